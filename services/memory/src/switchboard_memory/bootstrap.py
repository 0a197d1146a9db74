"""The composition root: the one place that builds the memory object graph."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from switchboard_memory.servicer import MemoryServicer
from switchboard_memory.settings import MemorySettings

_log = structlog.get_logger("bootstrap")


@dataclass(frozen=True)
class App:
    servicer: MemoryServicer
    on_shutdown: tuple[Callable[[], Awaitable[None]], ...] = ()


def build(settings: MemorySettings) -> App:
    # No engine yet: settings.database_url is owned here already, but there are no tables to
    # create until the session and collection stores exist. Opening a database that nothing
    # uses would only add a failure mode. Say so once at start.
    _log.warning("not built yet: every memory RPC answers 501 (see services/memory/README.md)")
    return App(servicer=MemoryServicer())
