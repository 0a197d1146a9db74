"""`switchboard credentials`: provider keys stored by the gateway (/api/credentials): add, list,
show, rotate and remove them, without a restart; log in to an OAuth provider with a device code
(the tokens stored the same way); and make the key they are sealed under."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import RenderableType

from switchboard_cli import device_login, output
from switchboard_cli.api import segment
from switchboard_cli.output import NONE, json_option, when
from switchboard_cli.session import Session


def credential_view(c: dict[str, Any]) -> RenderableType:
    return output.details([
        ("ID", c["credential_id"]), ("Provider", c.get("provider", "")), ("Key", c.get("hint", "")),
        ("Weight", str(c.get("weight", 1))), ("RPM", str(c.get("rpm") or NONE)),
        ("Created", when(c.get("created_at"))), ("Updated", when(c.get("updated_at")))])


def credentials_view(answer: dict[str, Any]) -> RenderableType:
    rows = ((c["credential_id"], c.get("provider", ""), c.get("hint", ""), str(c.get("weight", 1)),
             str(c.get("rpm") or NONE), when(c.get("created_at"), seconds=False))
            for c in answer.get("credentials", []))
    return output.listing(("ID", "PROVIDER", "KEY", "WEIGHT", "RPM", "CREATED"), rows,
                          empty="No stored provider credentials.")


def _secret(from_env: str | None) -> str:
    """The provider key: from a variable, piped on stdin, or typed without echo; never an
    argument (it would sit in the shell's history and the process list)."""
    if from_env:
        value = os.environ.get(from_env, "")
        if not value:
            raise click.UsageError(f"the variable {from_env} is empty or not set")
        return value
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    return click.prompt("Provider key", hide_input=True).strip()


_SECRET_ENV = click.option("--secret-env", metavar="VAR",
                           help="Read the provider key from this variable (default: stdin or a prompt).")


@click.group("credentials")
def command() -> None:
    """Provider keys stored by the gateway, sealed with AES-256-GCM (admin keys only)."""


@command.command("add")
@click.argument("provider")
@_SECRET_ENV
@click.option("--weight", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Its share of the provider's traffic against its other keys.")
@click.option("--rpm", type=click.IntRange(min=1), help="Its own requests per minute.")
@json_option
@click.pass_obj
def add(session: Session, provider: str, secret_env: str | None, weight: int, rpm: int | None) -> None:
    """Store a key for PROVIDER (a provider of switchboard.yaml); used at once by every router."""
    body: dict[str, Any] = {"provider": provider, "secret": _secret(secret_env), "weight": weight}
    if rpm:
        body["rpm"] = rpm
    output.emit(session, session.api().post("/api/credentials", body), credential_view)


@command.command("list")
@click.option("--provider", default="", help="Only this provider's keys.")
@json_option
@click.pass_obj
def list_(session: Session, provider: str) -> None:
    """Every stored key, by its hint."""
    output.emit(session, session.api().get("/api/credentials", {"provider": provider} if provider else None),
                credentials_view)


@command.command("show")
@click.argument("credential_id")
@json_option
@click.pass_obj
def show(session: Session, credential_id: str) -> None:
    """One stored key, by its hint."""
    output.emit(session, session.api().get(f"/api/credentials/{segment(credential_id)}"), credential_view)


@command.command("rotate")
@click.argument("credential_id")
@_SECRET_ENV
@json_option
@click.pass_obj
def rotate(session: Session, credential_id: str, secret_env: str | None) -> None:
    """Replace a stored key's secret (an invalid key becomes usable again)."""
    output.emit(session, session.api().post(f"/api/credentials/{segment(credential_id)}/rotate",
                                            {"secret": _secret(secret_env)}), credential_view)


@command.command("remove")
@click.argument("credential_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
@click.pass_obj
def remove(session: Session, credential_id: str, yes: bool) -> None:
    """Remove a stored key: no router uses it from then on."""
    output.confirm(f"Remove provider credential {credential_id}", yes)
    output.emit(session, session.api().delete(f"/api/credentials/{segment(credential_id)}"),
                lambda c: f"Removed {c['credential_id']} ({c.get('provider', '')} {c.get('hint', '')}).")


@command.command("login")
@click.argument("provider")
@click.option("--config", "config_path", envvar="SWITCHBOARD_CONFIG_PATH", default="switchboard.yaml",
              show_default=True, show_envvar=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The switchboard.yaml whose provider's `oauth:` names the OAuth client.")
@click.option("--weight", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Its share of the provider's traffic against its other credentials.")
@click.option("--poll-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, hidden=True,
              envvar="SWITCHBOARD_DEVICE_POLL_SCALE", help="Scale every wait (tests).")
@json_option
@click.pass_obj
def login(session: Session, provider: str, config_path: Path, weight: int, poll_scale: float) -> None:
    """Log in to PROVIDER's OAuth server with a device code (RFC 8628), then store the tokens."""
    def show(device: device_login.DeviceCode) -> None:
        # To stderr: stdout stays the stored credential (--json included).
        click.echo(f"Open {device.verification_uri} and enter the code {device.user_code}", err=True)
        if device.verification_uri_complete:
            click.echo(f"  (or open {device.verification_uri_complete})", err=True)
        click.echo("Waiting for the login to be approved...", err=True)

    try:
        client = device_login.read_client(config_path, provider, os.environ)
        answer = device_login.login(client, show, scale=poll_scale)
    except device_login.LoginFailed as exc:
        raise click.ClickException(str(exc)) from None
    body = {"provider": provider, "secret": json.dumps(answer), "weight": weight}
    output.emit(session, session.api().post("/api/credentials", body), credential_view)


@command.command("revoke")
@click.argument("credential_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
@click.pass_obj
def revoke(session: Session, credential_id: str, yes: bool) -> None:
    """Remove a stored credential; an OAuth one is revoked at the provider too, when its
    `oauth:` has a revocation_url."""
    output.confirm(f"Revoke provider credential {credential_id}", yes)
    output.emit(session, session.api().delete(f"/api/credentials/{segment(credential_id)}"),
                lambda c: f"Revoked {c['credential_id']} ({c.get('provider', '')} {c.get('hint', '')}).")


@command.command("generate-key")
def generate_key() -> None:
    """Print a new SWITCHBOARD_CREDENTIALS_KEY (32 random bytes, base64)."""
    click.echo(base64.b64encode(os.urandom(32)).decode())
