"""SQLAlchemy async engines: SQLite by default, PostgreSQL in production."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import MetaData, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Accept plain `sqlite:///...` and `postgresql://...` URLs and pick the async driver."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:"):]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def create_engine(url: str, *, sqlite_synchronous: str = "NORMAL") -> AsyncEngine:
    """An async engine for `url`; a SQLite file's directory is made if it is missing.

    SQLite's NORMAL (under WAL) may lose the last commits on a power loss; a service that acks
    a message after committing it asks for FULL."""
    if sqlite_synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"sqlite_synchronous: NORMAL or FULL, not {sqlite_synchronous!r}")
    url = async_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            sqlite_pragmas(dbapi_conn, sqlite_synchronous)

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


_SQLITE_BUSY_MS = 5000


def sqlite_pragmas(dbapi_conn, synchronous: str) -> None:
    """What every connection to a SQLite file of ours sets (also for a service's own sync
    connection beside its async engine)."""
    # WAL lets readers go on while one writer commits; busy_timeout waits instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
    _enable_wal(cur)
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.close()


def _enable_wal(cur) -> None:
    # Switching a fresh file to WAL needs an exclusive lock, and SQLite answers "database is
    # locked" at once rather than calling the busy handler when another connection (a replica
    # starting alongside, mid-migration) holds one; so wait here as busy_timeout would.
    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError; aiosqlite wraps it
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    """Every table at once, without history: for tests; services run `migrations.upgrade`."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
