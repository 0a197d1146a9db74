"""`python -m switchboard_router`: settings from the environment, logging, then serve."""

from __future__ import annotations

from switchboard_common import grpc_server, logs, tracing
from switchboard_common.settings import TelemetrySettings, load, warn_unknown_variables

from switchboard_router import server
from switchboard_router.settings import RouterSettings


def cli() -> None:
    settings = load(RouterSettings)
    logs.configure("router", settings.log_level, settings.log_format)
    warn_unknown_variables(RouterSettings)
    tracing.configure("router", load(TelemetrySettings))
    grpc_server.run(lambda: server.main(settings))


if __name__ == "__main__":
    cli()
