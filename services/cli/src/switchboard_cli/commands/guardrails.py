"""`switchboard guardrails`: guardrail policies (/api/guardrails/policies), attached to keys and
tenants by their guardrail_policy_ids."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import RenderableType

from switchboard_cli import output
from switchboard_cli.api import segment
from switchboard_cli.output import NONE, json_option, when
from switchboard_cli.session import Session

MAX_PAGE_SIZE = 1000
FAIL_MODES = ("closed", "open")
_RULE_HELP = ("CHECK:ACTION or CHECK:ACTION:OPTIONS_JSON, e.g. pii:redact or "
              "'keywords:block:{\"keywords\": [\"secret project\"]}' (repeatable)")


class RuleType(click.ParamType):
    """`check:action[:options as JSON]`, as the policy's rule."""

    name = "rule"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        check, _, rest = str(value).partition(":")
        action, _, options = rest.partition(":")
        if not check:
            self.fail(f"{value!r} names no check (CHECK:ACTION)", param, ctx)
        rule: dict[str, Any] = {"check": check}
        if action:
            rule["action"] = action
        if options:
            try:
                rule["options"] = json.loads(options)
            except json.JSONDecodeError as exc:
                self.fail(f"the options of {value!r} are not JSON: {exc.msg}", param, ctx)
        return rule


def _rules(rules: list[dict[str, Any]]) -> str:
    if not rules:
        return NONE
    return ", ".join(f"{r['check']}:{str(r.get('action', '')).removeprefix('ACTION_').lower()}"
                     + (f" {json.dumps(r['options'])}" if r.get("options") else "") for r in rules)


def policy_view(p: dict[str, Any]) -> RenderableType:
    return output.details([
        ("ID", p["policy_id"]), ("Name", p.get("name") or NONE), ("Tenant", p.get("tenant_id") or NONE),
        ("Input rules", _rules(p.get("input_rules") or [])),
        ("Output rules", _rules(p.get("output_rules") or [])),
        ("Fail mode", str(p.get("fail_mode", "")).removeprefix("FAIL_MODE_").lower()
         .replace("unspecified", "default (closed when a rule blocks or redacts)")),
        ("Created", when(p.get("created_at"))), ("Updated", when(p.get("updated_at")))])


def policies_view(policies: list[dict[str, Any]]) -> RenderableType:
    rows = ((p["policy_id"], p.get("name") or NONE, p.get("tenant_id") or NONE,
             str(len(p.get("input_rules") or [])), str(len(p.get("output_rules") or [])))
            for p in policies)
    return output.listing(("ID", "NAME", "TENANT", "INPUT", "OUTPUT"), rows, empty="No policies.")


@click.group("guardrails")
def command() -> None:
    """Guardrail policies: checks on prompts and answers that block, redact or warn."""


@command.command("create")
@click.option("--name", required=True, help="Unique within its tenant.")
@click.option("--input", "input_rules", type=RuleType(), multiple=True, help=f"An input rule: {_RULE_HELP}.")
@click.option("--output", "output_rules", type=RuleType(), multiple=True, help=f"An output rule: {_RULE_HELP}.")
@click.option("--fail-mode", type=click.Choice(FAIL_MODES),
              help="While guardrails is down: refuse (closed) or pass unchecked (open). Default: "
                   "closed when a rule blocks or redacts, open when all only warn.")
@click.option("--tenant", "tenant_id", help="Its tenant (admin keys only; default: the key's own).")
@json_option
@click.pass_obj
def create(session: Session, name: str, input_rules: tuple[dict[str, Any], ...],
           output_rules: tuple[dict[str, Any], ...], fail_mode: str | None,
           tenant_id: str | None) -> None:
    """Create a policy; attach it with a key's or tenant's guardrail_policy_ids."""
    body: dict[str, Any] = {"name": name, "input_rules": list(input_rules),
                            "output_rules": list(output_rules)}
    if fail_mode:
        body["fail_mode"] = fail_mode
    if tenant_id:
        body["tenant_id"] = tenant_id
    output.emit(session, session.api().post("/api/guardrails/policies", body), policy_view)


@command.command("list")
@click.option("--tenant", "tenant_id", help="Only this tenant's (admin keys).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N policies.")
@click.option("--page-size", type=click.IntRange(1, MAX_PAGE_SIZE), default=100, show_default=True,
              metavar="N", help="Policies fetched per request; every page is fetched.")
@json_option
@click.pass_obj
def list_policies(session: Session, tenant_id: str | None, limit: int | None, page_size: int) -> None:
    """List the policies the key may see."""
    params = {"tenant_id": tenant_id} if tenant_id else {}
    found = list(session.api().pages("/api/guardrails/policies", "policies", params,
                                     page_size=page_size, limit=limit))
    output.emit(session, found, policies_view)


@command.command("show")
@click.argument("policy_id")
@json_option
@click.pass_obj
def show(session: Session, policy_id: str) -> None:
    """Show one policy."""
    output.emit(session, session.api().get(f"/api/guardrails/policies/{segment(policy_id)}"),
                policy_view)


@command.command("update")
@click.argument("policy_id")
@click.option("--name", help="A new name.")
@click.option("--input", "input_rules", type=RuleType(), multiple=True,
              help="Replace the input rules (repeatable).")
@click.option("--no-input", is_flag=True, help="Remove every input rule.")
@click.option("--output", "output_rules", type=RuleType(), multiple=True,
              help="Replace the output rules (repeatable).")
@click.option("--no-output", is_flag=True, help="Remove every output rule.")
@click.option("--fail-mode", type=click.Choice(FAIL_MODES), help="A new fail mode.")
@json_option
@click.pass_obj
def update(session: Session, policy_id: str, name: str | None,
           input_rules: tuple[dict[str, Any], ...], no_input: bool,
           output_rules: tuple[dict[str, Any], ...], no_output: bool,
           fail_mode: str | None) -> None:
    """Change what is named; the rest stays. The change applies to requests at once."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if input_rules or no_input:
        body["input_rules"] = list(input_rules)
    if output_rules or no_output:
        body["output_rules"] = list(output_rules)
    if fail_mode:
        body["fail_mode"] = fail_mode
    if not body:
        raise click.UsageError("nothing to update: give --name, --input, --output or --fail-mode")
    output.emit(session, session.api().patch(f"/api/guardrails/policies/{segment(policy_id)}",
                                             body), policy_view)


@command.command("delete")
@click.argument("policy_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
@click.pass_obj
def delete(session: Session, policy_id: str, yes: bool) -> None:
    """Delete a policy. Keys still naming it are refused (404 policy_not_found), never unchecked."""
    output.confirm(f"Delete guardrail policy {policy_id}", yes)
    output.emit(session, session.api().delete(f"/api/guardrails/policies/{segment(policy_id)}"),
                lambda _: f"Deleted guardrail policy {policy_id}.")


def policy_options(*, removable: bool):
    """`--policy ID` (repeatable) for keys and tenants, and on updates `--no-policies`."""
    def add(f):
        if removable:
            f = click.option("--no-policies", is_flag=True,
                             help="Remove its own guardrail policies.")(f)
        return click.option("--policy", "policies", multiple=True, metavar="POLICY_ID",
                            help="A guardrail policy (repeatable); on an update the list "
                                 "replaces the old one.")(f)
    return add


def take_policies(given: dict[str, Any]) -> dict[str, Any]:
    """The body fields for the policy options; removed from `given`."""
    policies, clear = list(given.pop("policies", ()) or ()), given.pop("no_policies", False)
    if policies and clear:
        raise click.UsageError("give --policy or --no-policies, not both")
    if clear:
        return {"clear_guardrail_policy_ids": True}
    return {"guardrail_policy_ids": policies} if policies else {}
