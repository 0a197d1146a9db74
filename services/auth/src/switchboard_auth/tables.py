"""Auth's tables (tenants, keys); alembic migrations in migrations/ make them."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table

from switchboard_common.sqltypes import UtcDateTime

metadata = MetaData()

tenants = Table(
    "tenants", metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("guardrail_policy_ids", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

keys = Table(
    "keys", metadata,
    Column("key_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    # Authorize looks keys up by this, so it is the one index on the hot(ish) path.
    Column("key_hash", String(64), nullable=False, unique=True, index=True),
    Column("key_prefix", String(16), nullable=False),
    Column("allowed_models", JSON, nullable=False),
    Column("requests_per_minute", Integer, nullable=True),
    Column("tokens_per_minute", Integer, nullable=True),
    Column("max_budget_micros_usd", BigInteger, nullable=True),
    Column("guardrail_policy_ids", JSON, nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("metadata", JSON, nullable=False),
    Index("ix_keys_tenant_created", "tenant_id", "created_at", "key_id"),
    Index("ix_keys_created", "created_at", "key_id"),
)
