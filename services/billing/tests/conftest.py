"""Fixtures for billing's tests: SQLite per test, one PostgreSQL database per run, NATS streams."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("SWITCHBOARD_TEST_NATS_URL", "nats://127.0.0.1:4222")


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_database_url():
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    if not reachable(PG_ADMIN_URL):
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (SWITCHBOARD_TEST_POSTGRES_URL)")
    import asyncpg

    name = f"sb_test_billing_{secrets.token_hex(6)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(PG_ADMIN_URL)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'billing.db'}"
    return request.getfixturevalue("pg_database_url")


@pytest.fixture
def nats_url() -> str:
    if not reachable(NATS_URL):
        pytest.skip(f"NATS is not reachable at {NATS_URL} (SWITCHBOARD_TEST_NATS_URL)")
    return NATS_URL


@pytest.fixture
def eventually():
    return _eventually


async def _eventually(check, timeout: float = 10.0, interval: float = 0.05):
    """Await `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


@pytest.fixture
async def usage_stream(nats_url):
    """A JetStream stream of our own (unique name and subject, outside USAGE's `usage.>`),
    shaped like USAGE and deleted afterwards: (stream, subject, nats client)."""
    import nats
    from nats.js.api import StreamConfig

    tag = secrets.token_hex(6)
    stream, subject = f"SBTEST_USAGE_{tag}", f"sbtest.{tag}.usage.recorded"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[subject], duplicate_window=600.0))
    try:
        yield stream, subject, nc
    finally:
        await js.delete_stream(stream)
        await nc.close()
