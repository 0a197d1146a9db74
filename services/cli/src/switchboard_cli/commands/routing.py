"""`switchboard routing stats`: each deployment's health, circuit, traffic and latency
(GET /api/routing/stats), as the router replica that answered sees them."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from switchboard_cli import output
from switchboard_cli.output import json_option
from switchboard_cli.session import Session

_COLUMNS = ("MODEL", "DEPLOYMENT", "PROVIDER", "HEALTH", "CIRCUIT", "REQUESTS", "ERRORS",
            "SUCCESS %", "IN FLIGHT", "P50 MS", "P95 MS", "TTFT P50", "LAST ERROR")


def _ms(d: dict[str, Any], name: str) -> str:
    return f"{float(d.get(name, 0)):.1f}"


def _row(d: dict[str, Any]) -> tuple[str, ...]:
    # The router writes every field, counts as JSON numbers (GetRoutingStatsHttp).
    return (d.get("model", ""), d.get("deployment", ""), d.get("provider", ""),
            "healthy" if d.get("healthy") else "unavailable", d.get("circuit_state", "") or "closed",
            output.number(d.get("requests", 0)), output.number(d.get("errors", 0)),
            f"{100 * float(d.get('success_rate', 1)):.1f}", output.number(d.get("in_flight", 0)),
            _ms(d, "latency_p50_ms"), _ms(d, "latency_p95_ms"), _ms(d, "ttft_p50_ms"),
            d.get("last_error") or "-")


_KEY_COLUMNS = ("PROVIDER", "KEY", "STATE", "READY IN S", "WEIGHT", "RPM", "REQUESTS", "429S",
                "401/403S")


def _key_row(k: dict[str, Any]) -> tuple[str, ...]:
    return (k.get("provider", ""), k.get("hint", ""), k.get("state", ""),
            f"{float(k.get('ready_in_seconds', 0)):.0f}", str(k.get("weight", 0)),
            str(k.get("rpm", 0) or "-"), output.number(k.get("requests", 0)),
            output.number(k.get("rate_limited_responses", 0)),
            output.number(k.get("rejected_responses", 0)))


def stats_view(stats: dict[str, Any]) -> RenderableType:
    table = output.listing(_COLUMNS, (_row(d) for d in stats.get("deployments", [])),
                           empty="No deployments are configured.", whole=("DEPLOYMENT",))
    totals = (f"strategy: {stats.get('strategy', '')}  requests: "
              f"{output.number(stats.get('total_requests', 0))}  success: "
              f"{100 * float(stats.get('success_rate', 1)):.1f} %")
    parts: list[RenderableType] = [Text(totals), table]
    if stats.get("provider_keys"):  # providers with several keys (api_keys), by hint only
        parts.append(output.listing(_KEY_COLUMNS, (_key_row(k) for k in stats["provider_keys"]),
                                    empty="", whole=("KEY",)))
    return Group(*parts)


@click.group("routing")
def command() -> None:
    """How the router spreads requests over deployments."""


@command.command("stats")
@click.option("--model", default="", help="Only this model's deployments.")
@json_option
@click.pass_obj
def stats(session: Session, model: str) -> None:
    """Each deployment's health, circuit state, requests, errors and latency."""
    answer = session.api().get("/api/routing/stats", {"model": model} if model else None)
    output.emit(session, answer, stats_view)
