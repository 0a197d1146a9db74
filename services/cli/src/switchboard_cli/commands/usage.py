"""`switchboard usage`: the ledger's records, exported as CSV or JSON lines
(/api/billing/usage/export), streamed to stdout or a file in constant memory."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from switchboard_cli.output import json_option
from switchboard_cli.session import Session


@click.group("usage")
def command() -> None:
    """Usage records: one per request, with its tokens and cost."""


@command.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True, help="CSV with a header row, or one JSON object per line.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False, writable=True),
              help="Write to this file (default: stdout).")
@click.option("--period", type=click.Choice(["daily", "weekly", "monthly", "total"]),
              help="This UTC calendar period.")
@click.option("--start-date", metavar="YYYY-MM-DD", help="From this UTC day.")
@click.option("--end-date", metavar="YYYY-MM-DD", help="To this UTC day, included.")
@click.option("--key", "key_id", metavar="KEY_ID", help="Only this key's records.")
@click.option("--tenant", "tenant_id", metavar="TENANT_ID", help="Only this tenant's records.")
@click.option("--user", "user_id", metavar="USER_ID", help="Only this user's records.")
@click.option("--model", help="Only this model (as the client asked for it).")
@click.option("--provider", help="Only this provider.")
@json_option
@click.pass_obj
def export(session: Session, /, fmt: str, output: Path | None, **filters: str | None) -> None:
    """Every record the filters select (what the key may see), streamed as it arrives."""
    params = {"format": fmt, **{k: v for k, v in filters.items() if v}}
    target = output.open("wb") if output else sys.stdout.buffer
    try:
        for piece in session.api().stream("/api/billing/usage/export", params):
            target.write(piece)
        target.flush()
    finally:
        if output:
            target.close()
