"""Auth's tables (tenants, keys, their secrets, quota counters); alembic migrations make them."""

from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData,
                        PrimaryKeyConstraint, String, Table, false)

from switchboard_common.sqltypes import UtcDateTime

metadata = MetaData()


def _limit_columns() -> list[Column]:
    return [Column("requests_per_minute", Integer, nullable=True),
            Column("tokens_per_minute", Integer, nullable=True),
            Column("tokens_per_day", BigInteger, nullable=True),
            Column("max_parallel_requests", Integer, nullable=True)]


tenants = Table(
    "tenants", metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("guardrail_policy_ids", JSON, nullable=False),
    *_limit_columns(),  # defaults for keys that set none of their own
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=True),
    # The router's response cache answers its keys' requests by default.
    Column("cache_responses", Boolean, nullable=False, server_default=false()),
)

keys = Table(
    "keys", metadata,
    Column("key_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("key_prefix", String(16), nullable=False),
    Column("key_hint", String(32), nullable=False),
    Column("allowed_models", JSON, nullable=False),
    *_limit_columns(),
    Column("max_budget_micros_usd", BigInteger, nullable=True),
    Column("guardrail_policy_ids", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("metadata", JSON, nullable=False),
    Column("cache_responses", Boolean, nullable=True),  # NULL: as its tenant says
    Index("ix_keys_tenant_created", "tenant_id", "created_at", "key_id"),
    Index("ix_keys_user_created", "user_id", "created_at", "key_id"),
    Index("ix_keys_created", "created_at", "key_id"),
)

# Every secret that opens a key, by its keyed hash: Authorize finds a key by this primary key.
# A rotation adds a row and gives the old one an end (its grace period).
key_secrets = Table(
    "key_secrets", metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
)

# How much of each limit the router replicas together hold in a window: `kind` is
# requests_minute, tokens_minute or tokens_day, `window_start` Unix seconds (UTC). Only ever
# changed by one conditional statement each (quota_store.py).
quota_counters = Table(
    "quota_counters", metadata,
    Column("key_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("used", BigInteger, nullable=False),
    Column("last_grant", BigInteger, nullable=False),  # what the statement that wrote it granted
    PrimaryKeyConstraint("key_id", "kind", "window_start"),
    Index("ix_quota_counters_window", "window_start"),
)

# Parallel-request slots each router replica holds for a key, until it renews or they lapse.
parallel_leases = Table(
    "parallel_leases", metadata,
    Column("key_id", String(64), nullable=False),
    Column("replica_id", String(128), nullable=False),
    Column("slots", Integer, nullable=False),
    Column("last_grant", Integer, nullable=False),  # what the statement that wrote it granted
    Column("expires_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("key_id", "replica_id"),
)

# Facts about the deployment, e.g. the fingerprint of the hash secret every replica must share.
auth_settings = Table(
    "auth_settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

# Provider credentials sealed by the routers (AES-256-GCM under a key auth never holds): auth
# stores ciphertext it cannot open, with the hint and limits in the clear.
provider_credentials = Table(
    "provider_credentials", metadata,
    Column("credential_id", String(64), primary_key=True),
    Column("provider", String(128), nullable=False, index=True),
    Column("hint", String(32), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("weight", Integer, nullable=False),
    Column("rpm", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
