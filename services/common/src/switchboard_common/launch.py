"""The body of every service's `__main__`: settings, then logging, then the async server."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from switchboard_common import grpc_server, logs, tracing
from switchboard_common.settings import S, TelemetrySettings, load, warn_unknown_variables


def service_main(service: str, settings_cls: type[S], run: Callable[[S], Coroutine[Any, Any, None]]) -> None:
    """Read `settings_cls` from the environment (a bad value stops the process naming it),
    configure logging as `service`, and run `run(settings)` on uvloop until it returns."""
    settings = load(settings_cls)
    logs.configure(service, settings.log_level, settings.log_format)
    warn_unknown_variables(settings_cls)
    tracing.configure(service, load(TelemetrySettings))
    grpc_server.run(lambda: run(settings))
