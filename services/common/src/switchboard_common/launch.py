"""The body of every service's `__main__`: settings, then logging, then the async server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from switchboard_common import grpc_server, logs
from switchboard_common.settings import CommonSettings, load

S = TypeVar("S", bound=CommonSettings)


def service_main(service: str, settings_cls: type[S], run: Callable[[S], Awaitable[None]]) -> None:
    """Read `settings_cls` from the environment (a bad value stops the process naming it),
    configure logging as `service`, and run `run(settings)` on uvloop until it returns."""
    settings = load(settings_cls)
    logs.configure(service, settings.log_level, settings.log_format)
    grpc_server.run(lambda: run(settings))
