"""Billing's tables: the usage ledger, budgets with their per-period counters, the leases router
replicas hold, and the alert outbox; alembic migrations in migrations/ make them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

from switchboard_common.sqltypes import UtcDateTime

metadata = MetaData()

# Free-text columns have no length: a long value from the router must not make a row unstorable.
usage_records = Table(
    "usage_records", metadata,
    Column("event_id", String(200), primary_key=True),  # the idempotency key, minted by the router
    Column("request_id", String(200), nullable=False),  # x-request-id: correlation, may repeat
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
    # Honest with price_unknown beside it: 0 and price_unknown is "not known", not "free".
    Column("cost_micros_usd", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("error_type", String, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("ttfb_ms", Integer, nullable=False),
    Column("session_id", String, nullable=False),
    Column("reserved_micros_usd", BigInteger, nullable=False),
    Column("user_id", String, nullable=False, server_default=""),
    Column("cached_prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("cache_write_prompt_tokens", Integer, nullable=False, server_default="0"),
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),
    Column("price_unknown", Boolean, nullable=False, server_default="1"),
    Column("price_source", String, nullable=False, server_default=""),
    Column("budget_lease_id", String, nullable=False, server_default=""),
    Column("guardrails", String, nullable=False, server_default=""),
    Column("rag_sources", String, nullable=False, server_default=""),
    Column("cache_hit", Boolean, nullable=False, server_default="0"),
    Index("ix_usage_key_time", "key_id", "occurred_at"),
    Index("ix_usage_tenant_time", "tenant_id", "occurred_at"),
    # An admin's unfiltered, newest-first listing would otherwise sort the whole table.
    Index("ix_usage_time", "occurred_at", "event_id"),
    Index("ix_usage_request", "request_id"),
    Index("ix_usage_user_time", "user_id", "occurred_at"),
)

# One row per key or tenant and period kind ("daily", "monthly", "total"); a NULL limit does not
# limit that unit.
budgets = Table(
    "budgets", metadata,
    Column("budget_id", String(64), primary_key=True),
    Column("scope", String(8), nullable=False),  # "key" or "tenant"
    Column("scope_id", String, nullable=False),
    Column("period", String(8), nullable=False),
    Column("limit_micros_usd", BigInteger, nullable=True),
    Column("limit_tokens", BigInteger, nullable=True),
    Column("alert_thresholds", String, nullable=False),  # "50,80,100"
    Column("webhook_url", String, nullable=False),
    Column("webhook_secret", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ux_budget_scope_period", "scope", "scope_id", "period", unique=True),
)

# Where each budget stands in one period: spent is settled from usage events, leased is what
# router replicas hold. Grants are one conditional UPDATE of a row; `last_*` hold what the
# statement itself granted (RETURNING), the same on SQLite and PostgreSQL.
budget_counters = Table(
    "budget_counters", metadata,
    Column("budget_id", String(64), ForeignKey("budgets.budget_id", ondelete="CASCADE"),
           primary_key=True),
    Column("period_start", UtcDateTime, primary_key=True),
    Column("spent_micros_usd", BigInteger, nullable=False, default=0),
    Column("spent_tokens", BigInteger, nullable=False, default=0),
    Column("leased_micros_usd", BigInteger, nullable=False, default=0),
    Column("leased_tokens", BigInteger, nullable=False, default=0),
    Column("last_micros_usd", BigInteger, nullable=False, default=0),
    Column("last_tokens", BigInteger, nullable=False, default=0),
)

# One lease per router replica, key, tenant and UTC day; renewed by every LeaseBudget call.
budget_leases = Table(
    "budget_leases", metadata,
    Column("lease_id", String(64), primary_key=True),
    Column("replica_id", String, nullable=False),
    Column("key_id", String, nullable=False),
    Column("tenant_id", String, nullable=False),
    Column("day", String(10), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ux_lease_holder", "replica_id", "key_id", "tenant_id", "day", unique=True),
    Index("ix_lease_expiry", "expires_at"),
)

# What a lease holds of each budget's counter (the same slice of every budget it draws on).
lease_allocations = Table(
    "lease_allocations", metadata,
    Column("lease_id", String(64), ForeignKey("budget_leases.lease_id", ondelete="CASCADE"),
           primary_key=True),
    Column("budget_id", String(64), primary_key=True),
    Column("period_start", UtcDateTime, nullable=False),
    Column("held_micros_usd", BigInteger, nullable=False, default=0),
    Column("held_tokens", BigInteger, nullable=False, default=0),
    Column("last_micros_usd", BigInteger, nullable=False, default=0),
    Column("last_tokens", BigInteger, nullable=False, default=0),
)

# A threshold crossed once per budget, period, unit: the primary key makes it once.
alert_marks = Table(
    "alert_marks", metadata,
    Column("alert_id", String(200), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Alerts to deliver (NATS and webhook), written in the transaction that crossed the threshold
# and deleted once delivered: a billing restart neither loses nor repeats one.
alert_outbox = Table(
    "alert_outbox", metadata,
    Column("delivery_id", String(240), primary_key=True),  # alert_id + ":nats" / ":webhook"
    Column("alert_id", String(200), nullable=False),
    Column("channel", String(8), nullable=False),  # "nats" or "webhook"
    Column("payload", LargeBinary, nullable=False),  # BudgetAlert, serialized
    Column("budget_id", String(64), nullable=False),  # for the webhook's URL and secret
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", String, nullable=False, default=""),
    Index("ix_outbox_due", "next_attempt_at"),
)
