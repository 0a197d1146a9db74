"""The `switchboard` command: connection options, the registered sub-commands, API errors as messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from switchboard_cli.api import ApiError, Unreachable
from switchboard_cli.commands import COMMANDS
from switchboard_cli.output import json_option
from switchboard_cli.session import DEFAULT_URL, Session, gateway_url, local_master_key

_EPILOG = """\b
The key is, in this order: --api-key, SWITCHBOARD_API_KEY, SWITCHBOARD_MASTER_KEY, and, for a
gateway on this machine (127.0.0.1, localhost, ::1) only, the master key `make run` keeps in
<data dir>/master-key (--data-dir, SWITCHBOARD_DATA_DIR, default .data). Prefer the environment
to --api-key: a flag shows in the process list.

\b
Errors print the gateway's message and exit 1; bad arguments exit 2. A secret is printed only
by `keys create` and `keys rotate`, once.
"""


class _Switchboard(click.Group):
    """Turns the gateway's refusals into a one-line message and exit status 1, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ApiError, Unreachable) as exc:
            raise click.ClickException(str(exc)) from None


def _url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return gateway_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(cls=_Switchboard, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="SWITCHBOARD_URL", default=DEFAULT_URL, show_default=True, show_envvar=True,
              callback=_url, help="The gateway's edge (a URL ending in /v1 is taken too).")
@click.option("--api-key", envvar=["SWITCHBOARD_API_KEY", "SWITCHBOARD_MASTER_KEY"], show_envvar=True,
              metavar="KEY", help="The key to act with (see below for where else it is looked for).")
@click.option("--data-dir", envvar="SWITCHBOARD_DATA_DIR", default=".data", show_default=True,
              show_envvar=True, type=click.Path(path_type=Path, file_okay=False),
              help="`make run`'s data directory, read for its master key when no key is given.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="How long to wait for each answer.")
@json_option
@click.version_option(package_name="switchboard-cli", prog_name="switchboard")
@click.pass_context
def cli(ctx: click.Context, url: str, api_key: str | None, data_dir: Path, timeout: float) -> None:
    """Operate a Switchboard gateway: keys, tenants, models and health, through its REST API."""
    session = ctx.ensure_object(Session)
    session.url, session.timeout = url, timeout
    session.api_key = api_key or local_master_key(url, data_dir)


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="switchboard")
