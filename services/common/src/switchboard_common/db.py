"""SQLAlchemy async engines: SQLite by default, PostgreSQL in production."""

from __future__ import annotations

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


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; a SQLite file's directory is made if it is missing."""
    url = async_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            # WAL lets readers go on while one writer commits; busy_timeout waits instead of failing.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    """Every table at once, without history: for tests; services run `migrations.upgrade`."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
