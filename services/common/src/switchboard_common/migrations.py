"""Alembic migrations: each service upgrades its own schema to head when it starts.

A service keeps its revisions in its package (`switchboard_<svc>/migrations/`, shipped as package
data) and records them in its own version table, so several services can share one database.
The same code runs on SQLite (aiosqlite) and PostgreSQL (asyncpg).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import structlog
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, TypeDecorator, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common import db

_log = structlog.get_logger("migrations")


@dataclass(frozen=True)
class History:
    """A service's schema history: where its alembic revisions live, which table records the
    revision a database is at, and the tables a database made by `create_all` before the first
    revision holds (such a database is stamped at the first revision instead of failing)."""

    location: Path
    version_table: str
    pre_migration_tables: Collection[str] = ()


async def upgrade(url: str, history: History, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`, in one transaction that concurrent starts of
    the same service wait for: the first migrates, the others then find nothing to do."""
    engine = _engine(url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # SQLite serialises through BEGIN IMMEDIATE (see _engine); PostgreSQL needs a lock,
                # held until this transaction ends. Other services' upgrades use other keys.
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": _lock_key(history.version_table)})
            before, after = await conn.run_sync(_upgrade, history, revision)
        _log.info("database schema upgraded" if before != after else "database schema current",
                  version_table=history.version_table, revision=after, previous=before,
                  database=engine.dialect.name)
    finally:
        await engine.dispose()


async def differences(url: str, history: History, metadata: MetaData) -> list:
    """What alembic's autogenerate finds between the database and `metadata` ([] when they
    agree), looking only at the tables `metadata` declares."""
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_compare, history, metadata)
    finally:
        await engine.dispose()


def run_env(metadata: MetaData, history: History) -> None:
    """The body of each service's `env.py`.

    At service start `upgrade` hands over its connection; from the alembic command line
    (`alembic -c services/<svc>/alembic.ini -x url=... revision --autogenerate -m ...`) the
    database comes from `-x url=` or `sqlalchemy.url`, and `--sql` prints the DDL instead.
    """
    from alembic import context

    opts = _context_options(metadata, history)
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_migrations(context, connection, opts)
        return
    url = (context.get_x_argument(as_dictionary=True).get("url")
           or context.config.get_main_option("sqlalchemy.url"))
    if not url:
        raise SystemExit("name the database: alembic -x url=sqlite:///path/to.db ...")
    if context.is_offline_mode():
        context.configure(url=db.async_url(url), literal_binds=True, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(context, url, opts))


def _engine(url: str) -> AsyncEngine:
    engine = db.create_engine(url)
    if engine.dialect.name == "sqlite":
        # The sqlite3 module only opens a transaction before DML, so DDL would autocommit and two
        # processes could migrate one file at once. Open it ourselves, taking the write lock up
        # front: the migration is atomic, and a second process waits (busy_timeout) its turn.
        @event.listens_for(engine.sync_engine, "connect")
        def _no_implicit_begin(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _lock_key(version_table: str) -> int:
    return int.from_bytes(hashlib.sha256(version_table.encode()).digest()[:8], "big", signed=True)


def _config(history: History, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(history.location))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, history: History,
             revision: str) -> tuple[str | None, str | None]:
    """(revision before, revision after)."""
    # Alembic narrates each step at INFO ("Context impl ...", one line per revision); the one
    # line `upgrade` logs says what changed.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = _config(history, connection)
    if _made_by_create_all(connection, history):
        base = ScriptDirectory.from_config(config).get_base()
        assert base is not None, "a migration history has a base revision"
        _log.info("adopting a schema made before migrations", revision=base,
                  version_table=history.version_table)
        command.stamp(config, base)
    before = _current(connection, history)
    command.upgrade(config, revision)
    return before, _current(connection, history)


def _current(connection: Connection, history: History) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": history.version_table})
    return context.get_current_revision()


def _made_by_create_all(connection: Connection, history: History) -> bool:
    if not history.pre_migration_tables:
        return False
    tables = set(inspect(connection).get_table_names())
    return (history.version_table not in tables
            and set(history.pre_migration_tables) <= tables)


def _context_options(metadata: MetaData, history: History) -> dict:
    def ours(name, type_, _parent_names) -> bool:
        # Another service's tables in a shared database are none of this history's business.
        return type_ != "table" or name in metadata.tables

    # render_as_batch: SQLite alters a table by copying it; alembic's batch mode does that.
    return {"target_metadata": metadata, "version_table": history.version_table,
            "include_name": ours, "compare_type": True, "render_as_batch": True,
            "render_item": _render_item}


def _render_item(type_: str, obj, autogen_context) -> str | bool:
    # A revision is frozen in time, so it must not import our column types (which may change):
    # a type of ours is written as the SQL type it stores, e.g. UtcDateTime as DateTime(tz).
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"  # script.py.mako imports sqlalchemy as sa
    return False


def _run_migrations(context, connection: Connection, opts: dict) -> None:
    context.configure(connection=connection, **opts)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(context, url: str, opts: dict) -> None:
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(lambda sync_conn: _run_migrations(context, sync_conn, opts))
            await conn.commit()
    finally:
        await engine.dispose()


def _compare(connection: Connection, history: History, metadata: MetaData) -> list:
    context = MigrationContext.configure(connection, opts=_context_options(metadata, history))
    return compare_metadata(context, metadata)
