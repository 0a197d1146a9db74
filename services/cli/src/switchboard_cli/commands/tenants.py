"""`switchboard tenants`: create, list, show, update and delete tenants (/api/tenants)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import RenderableType

from switchboard_cli import limits, output
from switchboard_cli.api import segment
from switchboard_cli.commands.guardrails import policy_options, take_policies
from switchboard_cli.output import NONE, json_option, when
from switchboard_cli.session import Session

MAX_PAGE_SIZE = 1000


def tenant_view(tenant: dict[str, Any]) -> RenderableType:
    rows = [("ID", tenant["tenant_id"]), ("Name", tenant.get("name") or NONE),
            ("Default limits", limits.describe(tenant.get("default_rate_limits")))]
    if tenant.get("guardrail_policy_ids"):
        rows.append(("Guardrail policies", ", ".join(tenant["guardrail_policy_ids"])))
    rows += [("Created", when(tenant.get("created_at"))), ("Updated", when(tenant.get("updated_at")))]
    return output.details(rows)


def tenants_view(tenants: list[dict[str, Any]]) -> RenderableType:
    rows = ((t["tenant_id"], t.get("name") or NONE, limits.describe(t.get("default_rate_limits")),
             when(t.get("created_at"), seconds=False)) for t in tenants)
    return output.listing(("ID", "NAME", "DEFAULT LIMITS", "CREATED"), rows, empty="No tenants.")


@click.group("tenants")
def command() -> None:
    """Tenants and the default limits of their keys."""


@command.command("create")
@click.option("--name", required=True, help="The tenant's display name.")
@click.option("--id", "tenant_id", help="Its id (default: chosen by the server).")
@limits.options(removable=False)
@policy_options(removable=False)
@json_option
@click.pass_obj
def create(session: Session, /, name: str, tenant_id: str | None, **given: Any) -> None:
    """Create a tenant with default limits for its keys.

    A default applies to each of the tenant's keys that sets no limit of that kind."""
    body: dict[str, Any] = {"name": name, **({"tenant_id": tenant_id} if tenant_id else {})}
    body.update(take_policies(given))
    if default_limits := limits.take(given):
        body["default_rate_limits"] = default_limits
    output.emit(session, session.api().post("/api/tenants", body), tenant_view)


@command.command("list")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N tenants (default: every one).")
@click.option("--page-size", type=click.IntRange(1, MAX_PAGE_SIZE), default=100, show_default=True,
              metavar="N", help="Tenants fetched per request; every page is fetched.")
@json_option
@click.pass_obj
def list_tenants(session: Session, limit: int | None, page_size: int) -> None:
    """List the tenants the key may see, every page."""
    tenants = list(session.api().pages("/api/tenants", "tenants", {}, page_size=page_size, limit=limit))
    output.emit(session, tenants, tenants_view)


@command.command("show")
@click.argument("tenant_id")
@json_option
@click.pass_obj
def show(session: Session, tenant_id: str) -> None:
    """Show one tenant."""
    output.emit(session, session.api().get(f"/api/tenants/{segment(tenant_id)}"), tenant_view)


@command.command("update")
@click.argument("tenant_id")
@click.option("--name", help="A new display name.")
@limits.options(removable=True)
@policy_options(removable=True)
@json_option
@click.pass_obj
def update(session: Session, /, tenant_id: str, name: str | None, **given: Any) -> None:
    """Change the name or default limits; the rest stays."""
    body: dict[str, Any] = {"name": name} if name is not None else {}
    body.update(take_policies(given))
    if default_limits := limits.take(given):
        body["default_rate_limits"] = default_limits
    if not body:
        raise click.UsageError("nothing to update: give --name, a limit or --policy (see --help)")
    output.emit(session, session.api().patch(f"/api/tenants/{segment(tenant_id)}", body), tenant_view)


@command.command("delete")
@click.argument("tenant_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
@click.pass_obj
def delete(session: Session, tenant_id: str, yes: bool) -> None:
    """Delete a tenant whose keys are all revoked.

    Its revoked keys go with it; a tenant with a key still in use is refused (409)."""
    output.confirm(f"Delete tenant {tenant_id} and its revoked keys", yes)
    output.emit(session, session.api().delete(f"/api/tenants/{segment(tenant_id)}"),
                lambda t: f"Deleted tenant {t['tenant_id']} ({t.get('name') or 'no name'}).")
