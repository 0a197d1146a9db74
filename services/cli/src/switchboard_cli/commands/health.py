"""`switchboard health`: is the gateway ready (GET /healthz), and if not, is the edge at least up."""

from __future__ import annotations

import click

from switchboard_cli import output
from switchboard_cli.api import Unreachable
from switchboard_cli.output import json_option
from switchboard_cli.session import Session


@click.command("health", short_help="Is the gateway ready? (exit 1 when not)")
@json_option
@click.pass_obj
def command(session: Session) -> None:
    """Ready when the edge and every service pass their health checks; exits 1 when not.

    With --json a monitor gets an answer in every case, the edge not answering included."""
    api = session.api(authenticated=False)
    try:
        ready = api.status("/healthz") == 200
        # /healthz fails both when a service is down and when the edge itself is in trouble;
        # /livez (the edge alone) tells the two apart.
        edge = "up" if ready or api.status("/livez") == 200 else "down"
        if ready:
            message = f"healthy: {session.url} (the edge and every service pass their health checks)"
        elif edge == "up":
            message = f"unhealthy: the edge at {session.url} is up, but a service fails its health check"
        else:
            message = f"unhealthy: the edge at {session.url} does not answer its liveness check"
    except Unreachable as exc:
        ready, edge, message = False, "unreachable", f"unhealthy: {exc}"
    output.emit(session, {"url": session.url, "ready": ready, "edge": edge}, lambda _: message)
    if not ready:
        click.get_current_context().exit(1)
