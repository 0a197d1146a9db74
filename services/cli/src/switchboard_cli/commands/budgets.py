"""`switchboard budgets`: set and show a key's or a tenant's budget (/api/billing/budget)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import RenderableType

from switchboard_cli import output
from switchboard_cli.api import segment
from switchboard_cli.output import NONE, json_option, when
from switchboard_cli.session import Session

_PERIODS = {"BUDGET_PERIOD_DAILY": "daily", "BUDGET_PERIOD_MONTHLY": "monthly",
            "BUDGET_PERIOD_TOTAL": "total"}


def _scope(function):
    function = click.option("--tenant", "tenant_id", metavar="TENANT_ID",
                            help="A tenant's budget (shared by all its keys).")(function)
    return click.option("--key", "key_id", metavar="KEY_ID", help="A key's budget.")(function)


def _one_scope(key_id: str | None, tenant_id: str | None) -> dict[str, str]:
    if bool(key_id) == bool(tenant_id):
        raise click.UsageError("Give exactly one of --key and --tenant.")
    return {"key_id": key_id} if key_id else {"tenant_id": tenant_id or ""}


def _amount(usd: Any, tokens: Any) -> str:
    parts = [f"${usd:,.6f}".rstrip("0").rstrip(".") if usd is not None else "",
             f"{int(tokens):,} tokens" if tokens is not None else ""]
    return ", ".join(p for p in parts if p) or NONE


def budget_view(budget: dict[str, Any]) -> RenderableType:
    if not budget.get("exists"):
        return output.details([("Budget", "none: nothing is limited")])
    rows = (( _PERIODS.get(b.get("period", ""), b.get("period", "")),
              _amount(b.get("limit_usd"), b.get("limit_tokens")),
              _amount(b.get("spent_usd", 0), b.get("spent_tokens") if "limit_tokens" in b else None),
              _amount(b.get("reserved_usd", 0), None),
              _amount(b.get("remaining_usd", 0), b.get("remaining_tokens")
                      if "limit_tokens" in b else None),
              when(b.get("resets_at"), seconds=False)) for b in budget.get("limits", []))
    return output.listing(("PERIOD", "LIMIT", "SPENT", "RESERVED", "REMAINING", "RESETS"), rows,
                          empty="No limits.")


@click.group("budgets")
def command() -> None:
    """Budgets: what a key or a tenant may spend per UTC day, month or in total (402 beyond)."""


@command.command("set")
@_scope
@click.option("--daily-usd", metavar="DOLLARS", help="Dollars per UTC day (at most 6 decimals).")
@click.option("--monthly-usd", metavar="DOLLARS", help="Dollars per UTC month.")
@click.option("--total-usd", metavar="DOLLARS", help="Dollars in total, never reset.")
@click.option("--daily-tokens", type=click.IntRange(min=0), metavar="N", help="Tokens per UTC day.")
@click.option("--monthly-tokens", type=click.IntRange(min=0), metavar="N", help="Tokens per UTC month.")
@click.option("--alert", "alerts", type=click.IntRange(1, 1000), multiple=True, metavar="PERCENT",
              help="Alert when spend crosses this percent of a limit (repeat; default 50, 80, 100).")
@click.option("--webhook-url", metavar="URL", help="Where alerts are POSTed, signed.")
@click.option("--webhook-secret", envvar="SWITCHBOARD_WEBHOOK_SECRET", show_envvar=True,
              metavar="SECRET", help="The HMAC key of the alerts' signature.")
@json_option
@click.pass_obj
def set_budget(session: Session, /, key_id: str | None, tenant_id: str | None,
               daily_usd: str | None, monthly_usd: str | None, total_usd: str | None,
               daily_tokens: int | None, monthly_tokens: int | None, alerts: tuple[int, ...],
               webhook_url: str | None, webhook_secret: str | None) -> None:
    """Replace the budget of a key or a tenant: limits not given are removed.

    Requests that would go over a limit get 402 (budget_exceeded) before reaching a provider."""
    body: dict[str, Any] = _one_scope(key_id, tenant_id)
    given = {"daily_limit_dollars": daily_usd, "monthly_limit_dollars": monthly_usd,
             "daily_limit_tokens": daily_tokens, "monthly_limit_tokens": monthly_tokens}
    body.update({k: v for k, v in given.items() if v is not None})
    if total_usd is not None:
        body.update(period="BUDGET_PERIOD_TOTAL", limit_dollars=total_usd)
    if len(body) == 1:
        raise click.UsageError("Give at least one limit (--daily-usd, --monthly-usd, --total-usd, "
                               "--daily-tokens, --monthly-tokens).")
    if alerts:
        body["alert_thresholds_percent"] = list(alerts)
    if webhook_url:
        body["webhook_url"] = webhook_url
    if webhook_secret:
        body["webhook_secret"] = webhook_secret
    output.emit(session, session.api().post("/api/billing/budget", body), budget_view)


@command.command("show")
@_scope
@json_option
@click.pass_obj
def show(session: Session, key_id: str | None, tenant_id: str | None) -> None:
    """Show a budget: limits, spent, reserved by routers, remaining, and when each resets."""
    scope = _one_scope(key_id, tenant_id)
    api = session.api()
    budget = (api.get(f"/api/billing/budget/{segment(key_id)}") if key_id
              else api.get("/api/billing/budget", scope))
    output.emit(session, budget, budget_view)
