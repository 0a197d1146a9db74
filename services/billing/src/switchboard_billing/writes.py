"""Write transactions on billing's database, and the statements both dialects share.

PostgreSQL serializes conflicting writes with row locks (every multi-row writer takes them in
one order: leases, allocations, counters, each sorted by key, so none waits on another in a
cycle). SQLite has one writer per file, and a transaction that read before it writes fails at
once when another wrote meanwhile, so this process takes its SQLite writes one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Writer:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock or nullcontext(), self.engine.begin() as conn:
            yield conn


def least(a, b):
    """The smaller of two SQL expressions, spelled the same on both dialects."""
    return case((a < b, a), else_=b)


def clamp_grant(limit: int | None, used, ask: int):
    """What a conditional grant gives: `ask`, or what is left under `limit` (0 when nothing),
    computed by the database from the row's own `used` in the same statement."""
    if limit is None:
        return 0
    room = limit - used
    return case((room <= 0, 0), (room < ask, room), else_=ask)
