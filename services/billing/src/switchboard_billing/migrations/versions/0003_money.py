"""Money: prices on every record (price_unknown, price_source, cache and reasoning tokens, the
user and the budget lease), budgets with per-period counters, leases, and the alert outbox.

Rows stored before were never priced: price_unknown is true for them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_USAGE_COLUMNS: tuple[sa.Column, ...] = (
    sa.Column("user_id", sa.String(), nullable=False, server_default=""),
    sa.Column("cached_prompt_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cache_write_prompt_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("reasoning_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("price_unknown", sa.Boolean(), nullable=False, server_default="1"),
    sa.Column("price_source", sa.String(), nullable=False, server_default=""),
    sa.Column("budget_lease_id", sa.String(), nullable=False, server_default=""),
)


def upgrade() -> None:
    for column in _NEW_USAGE_COLUMNS:
        op.add_column("usage_records", column)
    op.create_index("ix_usage_user_time", "usage_records", ["user_id", "occurred_at"])
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(length=64), primary_key=True),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("scope_id", sa.String(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("limit_micros_usd", sa.BigInteger(), nullable=True),
        sa.Column("limit_tokens", sa.BigInteger(), nullable=True),
        sa.Column("alert_thresholds", sa.String(), nullable=False),
        sa.Column("webhook_url", sa.String(), nullable=False),
        sa.Column("webhook_secret", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_budget_scope_period", "budgets", ["scope", "scope_id", "period"],
                    unique=True)
    op.create_table(
        "budget_counters",
        sa.Column("budget_id", sa.String(length=64),
                  sa.ForeignKey("budgets.budget_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in (
            "spent_micros_usd", "spent_tokens", "leased_micros_usd", "leased_tokens",
            "last_micros_usd", "last_tokens")),
    )
    op.create_table(
        "budget_leases",
        sa.Column("lease_id", sa.String(length=64), primary_key=True),
        sa.Column("replica_id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_lease_holder", "budget_leases",
                    ["replica_id", "key_id", "tenant_id", "day"], unique=True)
    op.create_index("ix_lease_expiry", "budget_leases", ["expires_at"])
    op.create_table(
        "lease_allocations",
        sa.Column("lease_id", sa.String(length=64),
                  sa.ForeignKey("budget_leases.lease_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("budget_id", sa.String(length=64), primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in (
            "held_micros_usd", "held_tokens", "last_micros_usd", "last_tokens")),
    )
    op.create_table(
        "alert_marks",
        sa.Column("alert_id", sa.String(length=200), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "alert_outbox",
        sa.Column("delivery_id", sa.String(length=240), primary_key=True),
        sa.Column("alert_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(), nullable=False),
    )
    op.create_index("ix_outbox_due", "alert_outbox", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="alert_outbox")
    for table in ("alert_outbox", "alert_marks", "lease_allocations"):
        op.drop_table(table)
    op.drop_index("ix_lease_expiry", table_name="budget_leases")
    op.drop_index("ux_lease_holder", table_name="budget_leases")
    op.drop_table("budget_leases")
    op.drop_table("budget_counters")
    op.drop_index("ux_budget_scope_period", table_name="budgets")
    op.drop_table("budgets")
    op.drop_index("ix_usage_user_time", table_name="usage_records")
    with op.batch_alter_table("usage_records") as batch:
        for column in _NEW_USAGE_COLUMNS:
            batch.drop_column(column.name)
