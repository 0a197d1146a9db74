"""The infrastructure tests run against: free ports, NATS and PostgreSQL when reachable, scratch
databases, and polling until something holds."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from switchboard_common.ports import free_port as free_port  # re-exported for the tests

T = TypeVar("T")

POSTGRES_VARIABLE = "SWITCHBOARD_TEST_POSTGRES_URL"
NATS_VARIABLE = "SWITCHBOARD_TEST_NATS_URL"
REDIS_VARIABLE = "SWITCHBOARD_TEST_REDIS_URL"


def postgres_admin_url() -> str:
    """A PostgreSQL URL whose user may create databases (trust auth on loopback by default)."""
    return os.environ.get(POSTGRES_VARIABLE, "postgresql://postgres@127.0.0.1:5432/postgres")


def nats_url() -> str:
    return os.environ.get(NATS_VARIABLE, "nats://127.0.0.1:4222")


def redis_url() -> str:
    return os.environ.get(REDIS_VARIABLE, "redis://127.0.0.1:6379/0")


def reachable(url: str, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


def unreachable_reason(what: str, url: str, variable: str) -> str:
    """The skip message for a test that needs infrastructure that is not there."""
    return f"{what} is not reachable at {url} ({variable})"


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database named `<prefix>_<random>`, dropped on exit; yields its URL.

    Call it where no event loop runs (a sync, session-scoped fixture): it runs its own.
    """
    import asyncpg

    name = f"{prefix}_{secrets.token_hex(6)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 10.0,
                     interval: float = 0.05) -> T:
    """Await `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)
