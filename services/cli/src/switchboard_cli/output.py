"""What the CLI prints: the API's JSON for scripts, rich tables for people, a new secret once."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from switchboard_cli.session import Session

NONE = "-"
# Piped output is not cut to 80 columns: a wrapped row breaks grep and awk (JSON is for programs).
_PIPE_WIDTH = 240


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Session).json = True


# On every command as well as on `switchboard` itself, so `switchboard keys list --json` works.
json_option = click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_set_json,
                           help="Print the API's JSON (lists as one array) instead of a table.")


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else _PIPE_WIDTH)


def emit(session: Session, data: Any, view: Callable[[Any], RenderableType]) -> None:
    """`data` as JSON with --json, else as the table `view` makes of it."""
    if session.json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    out = console()
    with out.capture() as captured:
        out.print(view(data))
    # Rich pads every cell to its column's width; the padding at a line's end is only noise.
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()), color=out.is_terminal)


def issued_secret(session: Session, secret: str, hint: str) -> None:
    """The one time a secret is printed: stdout (after the table or inside the JSON), with a warning
    on stderr so that `| jq -r .secret` still reads clean JSON."""
    if not session.json:
        click.echo(f"\nSecret: {secret}")
    click.secho(f"Store this secret now: it is shown only this once. Afterwards the key shows only "
                f"its hint, {hint}.", err=True, fg="yellow")


def details(rows: Iterable[tuple[str, str]]) -> Table:
    """One object as field / value lines."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(Text(name), Text(value))
    return grid


def listing(columns: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str,
            whole: Collection[str] = ()) -> RenderableType:
    """Many objects as aligned columns. On a narrow terminal the first (the id) and those in `whole`
    keep their values on one line; the others wrap."""
    rows = list(rows)
    if not rows:
        return Text(empty)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for i, name in enumerate(columns):
        table.add_column(name, no_wrap=i == 0 or name in whole, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def when(value: str | None, *, seconds: bool = True) -> str:
    """An RFC 3339 timestamp from the API as `2026-12-01 12:26:24 UTC` (in lists, to the minute)."""
    if not value:
        return NONE
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def is_past(value: str | None) -> bool:
    if not value:
        return False
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) <= datetime.now().astimezone()
    except ValueError:
        return False


def number(value: int | str) -> str:
    """64-bit integers arrive as JSON strings (proto3 JSON); both print as 2,000,000."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def confirm(question: str, yes: bool) -> None:
    """Ask before what cannot be undone; off a terminal, --yes must say so (nothing hangs on stdin)."""
    if yes:
        return
    if not on_terminal():
        raise click.UsageError("not a terminal to confirm on: pass --yes to go ahead")
    click.confirm(f"{question}. Go ahead?", abort=True)


def on_terminal() -> bool:
    return sys.stdin.isatty()
