"""Auth's alembic history: it makes exactly the tables in tables.py on SQLite and PostgreSQL,
concurrent starts migrate once, a pre-migration database is adopted, the wheel ships it, and
keys made before revision 0002 keep working."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa

from switchboard_common import db, migrations
from switchboard_common.testing.schema import (  # noqa: F401 - pytest collects them here
    test_a_database_made_by_create_all_is_adopted, test_concurrent_starts_migrate_once,
    test_migrations_make_exactly_the_declared_tables, test_the_wheel_ships_the_migrations)

# What the scenarios migrate and compare against (they read them from this module).
from switchboard_auth.migrations import HISTORY
from switchboard_auth.tables import metadata as METADATA  # noqa: F401

from switchboard_auth import bootstrap
from switchboard_auth.domain import Role
from switchboard_auth.hashing import KeyHasher
from switchboard_auth.settings import AuthSettings



# --- keys made before revision 0002 ---------------------------------------------------------

_OLD = sa.MetaData()
_OLD_KEYS = sa.Table(  # the keys table as revision 0001 made it
    "keys", _OLD, sa.Column("key_id", sa.String(64)), sa.Column("name", sa.String(200)),
    sa.Column("tenant_id", sa.String(64)), sa.Column("key_hash", sa.String(64)),
    sa.Column("key_prefix", sa.String(16)), sa.Column("allowed_models", sa.JSON),
    sa.Column("requests_per_minute", sa.Integer), sa.Column("tokens_per_minute", sa.Integer),
    sa.Column("max_budget_micros_usd", sa.BigInteger), sa.Column("guardrail_policy_ids", sa.JSON),
    sa.Column("is_admin", sa.Boolean), sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)), sa.Column("metadata", sa.JSON))


async def test_keys_made_before_roles_and_rotation_keep_working(tmp_path, empty_database_url):
    hash_secret = "legacy-hash-secret-" + secrets.token_hex(8)
    legacy = "sk-sb-" + secrets.token_urlsafe(32)  # the old format: no checksum
    await migrations.upgrade(empty_database_url, HISTORY, "0001")
    engine = db.create_engine(empty_database_url)
    hasher = KeyHasher(hash_secret.encode())
    try:
        async with engine.begin() as conn:
            for key_id, secret, is_admin in (("key_old", legacy, False),
                                             ("key_old_admin", legacy + "a", True)):
                await conn.execute(_OLD_KEYS.insert().values(
                    key_id=key_id, name=key_id, tenant_id="default", key_hash=hasher.hash(secret),
                    key_prefix=secret[:8], allowed_models=["gpt-4o*"], requests_per_minute=None,
                    tokens_per_minute=None, max_budget_micros_usd=None, guardrail_policy_ids=[],
                    is_admin=is_admin, created_at=datetime(2025, 1, 1, tzinfo=UTC),
                    expires_at=None, revoked_at=None, metadata={"team": "ml"}))
    finally:
        await engine.dispose()

    app = await bootstrap.build(AuthSettings(
        data_dir=tmp_path, database_url=empty_database_url, master_key="sk-master-" + "m" * 30,
        hash_secret=hash_secret, nats_url="nats://127.0.0.1:1"))
    try:
        verdict = await app.admission.authorize(legacy, "gpt-4o-mini")
        key = verdict.key
        assert (key.key_id, key.role, key.user_id, key.allowed_models) == (
            "key_old", Role.MEMBER, "", ("gpt-4o*",))
        assert (key.key_hint, key.metadata) == (legacy[:8] + "...", {"team": "ml"})
        admin = await app.admission.authorize(legacy + "a", "")
        assert admin.key.role is Role.ADMIN and admin.key.is_admin
        # And they rotate like any key.
        rotated = await app.keys.rotate(await app.admission.principal(legacy + "a"), "key_old", 0)
        assert (await app.admission.authorize(rotated.secret, "gpt-4o")).key.key_id == "key_old"
    finally:
        await app.close()
