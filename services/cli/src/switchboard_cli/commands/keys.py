"""`switchboard keys`: create, list, show, update, rotate and revoke virtual keys (/api/keys)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import RenderableType

from switchboard_cli import limits, output
from switchboard_cli.api import segment
from switchboard_cli.commands.guardrails import policy_options, take_policies
from switchboard_cli.output import NONE, json_option, when
from switchboard_cli.params import Duration, Expiry, ExpiryType, KeyValue, split_models
from switchboard_cli.session import Session

ROLES = ("member", "tenant_admin", "admin")
MAX_PAGE_SIZE = 1000  # the API's (AIP-158: larger pages are cut to it)
F = TypeVar("F", bound=Callable[..., Any])


def status(key: dict[str, Any]) -> str:
    if key.get("revoked_at"):
        return "revoked"
    return "expired" if output.is_past(key.get("expires_at")) else "active"


def _models(key: dict[str, Any]) -> str:
    return ", ".join(key.get("allowed_models") or []) or "every model"


def key_view(key: dict[str, Any]) -> RenderableType:
    rows = [("ID", key["key_id"]), ("Name", key.get("name") or NONE),
            ("Tenant", key.get("tenant_id") or NONE), ("User", key.get("user_id") or NONE),
            ("Role", key.get("role") or NONE), ("Hint", key.get("key_hint") or NONE),
            ("Status", status(key)), ("Models", _models(key)),
            ("Limits", limits.describe(key.get("rate_limits"))),
            ("Effective limits", limits.describe(key.get("effective_rate_limits"))),
            ("Expires", when(key["expires_at"]) if key.get("expires_at") else "never")]
    if key.get("guardrail_policy_ids"):
        rows.append(("Guardrail policies", ", ".join(key["guardrail_policy_ids"])))
    if key.get("previous_secret_expires_at"):
        rows.append(("Previous secret", f"works until {when(key['previous_secret_expires_at'])}"))
    metadata = sorted((key.get("metadata") or {}).items())
    rows += [("Metadata", ", ".join(f"{k}={v}" for k, v in metadata) or NONE),
             ("Created", when(key.get("created_at"))), ("Updated", when(key.get("updated_at")))]
    if key.get("revoked_at"):
        rows.append(("Revoked", when(key["revoked_at"])))
    return output.details(rows)


def keys_view(keys: list[dict[str, Any]]) -> RenderableType:
    # The owner, metadata and timestamps are in `keys show`; a list stays readable at 120 columns.
    columns = ("ID", "NAME", "TENANT", "ROLE", "HINT", "MODELS", "LIMITS", "EXPIRES", "STATUS")
    rows = ((k["key_id"], k.get("name") or NONE, k.get("tenant_id") or NONE,
             k.get("role") or NONE, k.get("key_hint") or NONE, _models(k),
             limits.describe(k.get("effective_rate_limits")),
             when(k["expires_at"], seconds=False) if k.get("expires_at") else "never", status(k))
            for k in keys)
    return output.listing(columns, rows, empty="No keys.", whole=("ROLE", "HINT", "STATUS"))


@click.group("keys")
def command() -> None:
    """Virtual keys: create, list, show, update, rotate and revoke."""


_MODELS_HELP = ("Models the key may call: exact names or prefixes ending in '*' ('gpt-4o*', "
                "'anthropic/*'), comma-separated or repeated.")


def _models_option(left_out: str) -> Callable[[F], F]:
    return click.option("--models", multiple=True, callback=split_models, metavar="PATTERNS",
                        help=f"{_MODELS_HELP} {left_out}")


_metadata_option = click.option("--metadata", type=KeyValue(), multiple=True,
                                help="A metadata entry, KEY=VALUE (repeatable).")


def _settings(models: list[str], expires: Expiry | None, metadata: tuple[tuple[str, str], ...],
              given: dict[str, Any]) -> dict[str, Any]:
    """What create and update share: models, limits, expiry and metadata as the API's fields."""
    body: dict[str, Any] = {}
    if models:
        body["allowed_models"] = models
    if rate_limits := limits.take(given):
        body["rate_limits"] = rate_limits
    if expires is not None:
        body.update(expires.body())
    if metadata:
        body["metadata"] = dict(metadata)
    return body


@command.command("create")
@click.option("--name", required=True, help="What the key is for (e.g. the app's name).")
@click.option("--tenant", "tenant_id", help="Its tenant (default: the caller's; the master key's is 'default').")
@click.option("--user", "user_id", help="Its owner's user id.")
@click.option("--role", type=click.Choice(ROLES), help="member (default): calls models; tenant_admin: "
              "manages its tenant's keys; admin: manages everything.")
@_models_option("Left out: every model.")
@limits.options(removable=False)
@policy_options(removable=False)
@click.option("--expires", type=ExpiryType(allow_never=False), metavar="WHEN",
              help="A duration from now (30d, 12h, 1h30m) or a date/time (2027-01-31, "
                   "2027-01-31T12:00:00Z; UTC unless an offset is given). Left out: never.")
@_metadata_option
@json_option
@click.pass_obj
def create(session: Session, /, name: str, tenant_id: str | None, user_id: str | None, role: str | None,
           models: list[str], expires: Expiry | None, metadata: tuple[tuple[str, str], ...], **given: Any) -> None:
    """Create a key; its secret is printed once."""
    body: dict[str, Any] = {"name": name}
    body.update({k: v for k, v in (("tenant_id", tenant_id), ("user_id", user_id), ("role", role)) if v})
    body.update(take_policies(given))
    body.update(_settings(models, expires, metadata, given))
    answer = session.api().post("/api/keys", body)
    output.emit(session, answer, lambda a: key_view(a["key"]))
    output.issued_secret(session, answer["secret"], answer["key"].get("key_hint", ""))


@command.command("list")
@click.option("--tenant", "tenant_id", help="Only this tenant's keys.")
@click.option("--user", "user_id", help="Only this user's keys.")
@click.option("--name-prefix", help="Only keys whose name starts with this.")
@click.option("--revoked/--not-revoked", default=None, help="Only revoked, or only unrevoked, keys (default: both).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N keys (default: every one).")
@click.option("--page-size", type=click.IntRange(1, MAX_PAGE_SIZE), default=100, show_default=True,
              metavar="N", help="Keys fetched per request; every page is fetched.")
@json_option
@click.pass_obj
def list_keys(session: Session, tenant_id: str | None, user_id: str | None, name_prefix: str | None,
              revoked: bool | None, limit: int | None, page_size: int) -> None:
    """List keys, oldest first, every page."""
    params: dict[str, Any] = {k: v for k, v in (("tenant_id", tenant_id), ("user_id", user_id),
                                                ("name_prefix", name_prefix)) if v}
    if revoked is not None:
        params["revoked"] = "true" if revoked else "false"
    keys = list(session.api().pages("/api/keys", "keys", params, page_size=page_size, limit=limit))
    output.emit(session, keys, keys_view)


@command.command("show")
@click.argument("key_id")
@json_option
@click.pass_obj
def show(session: Session, key_id: str) -> None:
    """Show one key (never its secret: only the hint)."""
    output.emit(session, session.api().get(f"/api/keys/{segment(key_id)}"), key_view)


@command.command("update")
@click.argument("key_id")
@click.option("--name", help="A new name.")
@click.option("--user", "user_id", help="A new owner.")
@click.option("--role", type=click.Choice(ROLES), help="A new role.")
@_models_option("Replaces the list; '*' allows every model.")
@limits.options(removable=True)
@policy_options(removable=True)
@click.option("--expires", type=ExpiryType(allow_never=True), metavar="WHEN",
              help="A duration from now, a date/time, or 'never' to remove the expiry.")
@click.option("--metadata", type=KeyValue(), multiple=True,
              help="Set a metadata entry, KEY=VALUE; KEY= removes it (repeatable).")
@json_option
@click.pass_obj
def update(session: Session, /, key_id: str, name: str | None, user_id: str | None, role: str | None,
           models: list[str], expires: Expiry | None, metadata: tuple[tuple[str, str], ...], **given: Any) -> None:
    """Change what the options name; the rest stays."""
    body: dict[str, Any] = {k: v for k, v in (("name", name), ("user_id", user_id), ("role", role))
                            if v is not None}
    body.update(take_policies(given))
    body.update(_settings(models, expires, metadata, given))
    if not body:
        raise click.UsageError("nothing to update: name at least one change (see --help)")
    output.emit(session, session.api().patch(f"/api/keys/{segment(key_id)}", body), key_view)


@command.command("rotate")
@click.argument("key_id")
@click.option("--grace", type=Duration(), metavar="DURATION",
              help="How long the old secret keeps working (1h, 30m; at most 30d). Left out: it stops now.")
@json_option
@click.pass_obj
def rotate(session: Session, key_id: str, grace: int | None) -> None:
    """Give the key a new secret, printed once."""
    body = {"grace_period_seconds": grace} if grace else {}
    answer = session.api().post(f"/api/keys/{segment(key_id)}/rotate", body)
    output.emit(session, answer, lambda a: key_view(a["key"]))
    output.issued_secret(session, answer["secret"], answer["key"].get("key_hint", ""))


@command.command("revoke")
@click.argument("key_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
@click.pass_obj
def revoke(session: Session, key_id: str, yes: bool) -> None:
    """Revoke a key, at once and for good.

    Every request with it is refused from the next one; revoking it again changes nothing."""
    output.confirm(f"Revoke key {key_id}? Every app using it is refused from the next request", yes)
    output.emit(session, session.api().delete(f"/api/keys/{segment(key_id)}"), key_view)
