"""Billing's tables (usage_records); alembic migrations in migrations/ make them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table

from switchboard_common.sqltypes import UtcDateTime

metadata = MetaData()

# Free-text columns have no length: a long value from the router must not make a row unstorable.
usage_records = Table(
    "usage_records", metadata,
    Column("request_id", String(200), primary_key=True),  # the idempotency key
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("key_id", String, nullable=False),
    Column("tenant_id", String, nullable=False),
    Column("model", String, nullable=False),
    Column("provider", String, nullable=False),
    Column("deployment", String, nullable=False),
    Column("upstream_model", String, nullable=False),
    Column("endpoint", String, nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("token_source", String(16), nullable=False),
    Column("cost_micros_usd", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("error_type", String, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("ttfb_ms", Integer, nullable=False),
    Column("session_id", String, nullable=False),
    Column("reserved_micros_usd", BigInteger, nullable=False),
    Index("ix_usage_key_time", "key_id", "occurred_at"),
    Index("ix_usage_tenant_time", "tenant_id", "occurred_at"),
    # An admin's unfiltered, newest-first listing would otherwise sort the whole table.
    Index("ix_usage_time", "occurred_at", "request_id"),
)
