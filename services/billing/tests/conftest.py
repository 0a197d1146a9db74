"""Fixtures for billing's tests: SQLite per test, one PostgreSQL database per run, a usage
repository, NATS streams."""

from __future__ import annotations

import secrets

import pytest

from switchboard_common import db
from switchboard_common.testing.fixtures import (  # noqa: F401 - the fixtures of this suite
    database_url, empty_database_url, eventually, nats_url, pg_database_url)

from switchboard_billing.repository import UsageRepository
from switchboard_billing.tables import metadata


@pytest.fixture
async def repo(tmp_path):
    """The usage repository on a new SQLite file (tables made at once: migrations have their own
    tests)."""
    engine = db.create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    await db.create_schema(engine, metadata)
    yield UsageRepository(engine)
    await engine.dispose()


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
    await js.add_stream(StreamConfig(name=stream, subjects=[subject, f"{subject}.batch"],
                                     duplicate_window=600.0))
    try:
        yield stream, subject, nc
    finally:
        await js.delete_stream(stream)
        await nc.close()
