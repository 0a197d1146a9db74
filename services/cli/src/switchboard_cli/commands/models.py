"""`switchboard models`: what the gateway can serve right now (GET /v1/models)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import click
from rich.console import RenderableType

from switchboard_cli import output
from switchboard_cli.output import NONE, json_option
from switchboard_cli.session import Session


def _created(model: dict[str, Any]) -> str:
    created = model.get("created")
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d") if isinstance(created, int) else NONE


def models_view(models: list[dict[str, Any]]) -> RenderableType:
    rows = ((m["id"], m.get("owned_by") or NONE, _created(m)) for m in models)
    return output.listing(("MODEL", "OWNED BY", "CREATED"), rows, empty="No models are served.")


@click.group("models")
def command() -> None:
    """Models the gateway serves (OpenAI's /v1/models)."""


@command.command("list")
@json_option
@click.pass_obj
def list_models(session: Session) -> None:
    """List the models this key can be served."""
    output.emit(session, session.api().get("/v1/models").get("data", []), models_view)


@command.command("show")
@click.argument("model")
@json_option
@click.pass_obj
def show(session: Session, model: str) -> None:
    """Show one model (names may hold '/', as in 'openai/gpt-4o')."""
    answer = session.api().get(f"/v1/models/{quote(model, safe='/')}")
    output.emit(session, answer, lambda m: output.details(
        [("Model", m["id"]), ("Owned by", m.get("owned_by") or NONE), ("Created", _created(m))]))
