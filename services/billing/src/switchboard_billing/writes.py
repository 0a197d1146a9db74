"""Write transactions on billing's database, and the statements both dialects share.

PostgreSQL serializes conflicting writes with row locks (every multi-row writer takes them in
one order: leases, allocations, counters, each sorted by key, so none waits on another in a
cycle). SQLite has one writer per file, and a transaction that read before it writes fails at
once when another wrote meanwhile, so this process takes its SQLite writes one at a time.

`run` is the hot path's transaction (the consumer's insert, settlement and alerts): on SQLite it
runs whole on a plain sqlite3 connection in one worker thread, one thread hop for the whole
transaction. Through aiosqlite every statement, cursor and fetch is a hop of its own (about 50
for one fetch's transaction, ~5 ms of CPU, more than the records themselves at 100 a commit).
On PostgreSQL the same function runs on the async connection (`run_sync`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, nullcontext
from typing import TypeVar

from sqlalchemy import Connection, Engine, case, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_common import db

T = TypeVar("T")


class Writer:
    def __init__(self, engine: AsyncEngine, *, sqlite_synchronous: str = "FULL") -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        if self.dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            # The same file, through the plain driver; used only from the one thread below.
            self._sync = create_engine(engine.url.set(drivername="sqlite"))
            event.listen(self._sync, "connect",
                         lambda dbapi_conn, _record: db.sqlite_pragmas(dbapi_conn,
                                                                       sqlite_synchronous))
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="billing-sqlite-writer")

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock or nullcontext(), self.engine.begin() as conn:
            yield conn

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` in one transaction, committed when it returns (rolled back if it
        raises); its result."""
        if self._sync is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        assert self._lock is not None and self._thread is not None
        async with self._lock:
            done = asyncio.get_running_loop().run_in_executor(
                self._thread, _in_transaction, self._sync, work)
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The thread finishes (commits or rolls back) regardless: keep the lock until
                # then, so no other write of this process meets it half done.
                await asyncio.wait({done})
                raise

    async def close(self) -> None:
        if self._sync is not None and self._thread is not None:
            # sqlite3 connections are closed in the thread that made them.
            await asyncio.get_running_loop().run_in_executor(self._thread, self._sync.dispose)
            self._thread.shutdown()


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)


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
