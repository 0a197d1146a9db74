"""Guardrails' tables (policies); alembic migrations in migrations/ make them."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, MetaData, String, Table, UniqueConstraint

from switchboard_common.sqltypes import UtcDateTime

metadata = MetaData()

policies = Table(
    "guardrail_policies", metadata,
    Column("policy_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    # Rules as JSON lists of {"check", "action", "options"}: read whole, never queried into.
    Column("input_rules", JSON, nullable=False),
    Column("output_rules", JSON, nullable=False),
    Column("fail_mode", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_guardrail_policies_tenant_name"),
    Index("ix_guardrail_policies_tenant_created", "tenant_id", "created_at", "policy_id"),
    Index("ix_guardrail_policies_created", "created_at", "policy_id"),
)
