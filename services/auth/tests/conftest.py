"""Fixtures for auth's tests: databases (SQLite per test, one PostgreSQL database per run), NATS,
and `world`: auth's use cases on a real SQLite file with a settable clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_common import db
from switchboard_common.testing.fixtures import (  # noqa: F401 - the fixtures of this suite
    database_url, empty_database_url, eventually, nats_url, pg_database_url)

from switchboard_auth import key_format
from switchboard_auth.access import Principal
from switchboard_auth.admission import Admission
from switchboard_auth.domain import NewKey, Role
from switchboard_auth.hashing import KeyHasher
from switchboard_auth.keys import KeyAdmin
from switchboard_auth.quota import QuotaLedger
from switchboard_auth.quota_store import QuotaStore
from switchboard_auth.repository import Repository
from switchboard_auth.tables import metadata
from switchboard_auth.tenants import TenantAdmin

MASTER = "sk-master-unit-test-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Notifications:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []  # (key_id or "tenant:<id>", change)

    async def __call__(self, key, change) -> None:
        self.seen.append((key.key_id, change))

    async def tenant(self, tenant_id, change) -> None:
        self.seen.append((f"tenant:{tenant_id}", change))


class World:
    """Auth's use cases over one SQLite file, a clock tests move, and the changes announced."""

    def __init__(self, engine) -> None:
        self.master_secret = MASTER
        self.repo = Repository(engine)
        self.hasher = KeyHasher(b"unit-test-hash-secret")
        self.clock = Clock()
        self.notes = Notifications()
        self.tenants = TenantAdmin(self.repo, self.notes.tenant, self.clock)
        self.admission = Admission(self.repo, self.hasher, cache_ttl_seconds=30, clock=self.clock)
        self.keys = KeyAdmin(self.repo, self.hasher, self.notes, self.clock)
        self.quota = QuotaLedger(self.repo, QuotaStore(self.repo.insert),
                                 parallel_lease_seconds=60, clock=self.clock)

    async def master(self) -> Principal:
        return await self.admission.principal(MASTER)

    async def principal(self, secret: str, acting_user: str = "") -> Principal:
        return await self.admission.principal(secret, acting_user)

    async def key(self, role: Role = Role.MEMBER, **fields):
        """A new key made by the master key: (its Key, its secret)."""
        created = await self.keys.create(await self.master(), NewKey(role=role.value, **fields))
        return created.key, created.secret


@pytest.fixture
async def world(tmp_path):
    engine = db.create_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    await db.create_schema(engine, metadata)
    w = World(engine)
    await w.tenants.ensure_default()
    await w.repo.upsert_master(w.hasher.hash(MASTER), key_format.display_prefix(MASTER),
                               key_format.hint(MASTER), w.clock())
    yield w
    await engine.dispose()
