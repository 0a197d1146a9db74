"""Initial schema: usage_records, as `create_all` made it before migrations existed.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:14:27.682019

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("deployment", sa.String(), nullable=False),
        sa.Column("upstream_model", sa.String(), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("token_source", sa.String(length=16), nullable=False),
        sa.Column("cost_micros_usd", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("ttfb_ms", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("reserved_micros_usd", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_usage_key_time", "usage_records", ["key_id", "occurred_at"])
    op.create_index("ix_usage_tenant_time", "usage_records", ["tenant_id", "occurred_at"])
    op.create_index("ix_usage_time", "usage_records", ["occurred_at", "request_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_time", table_name="usage_records")
    op.drop_index("ix_usage_tenant_time", table_name="usage_records")
    op.drop_index("ix_usage_key_time", table_name="usage_records")
    op.drop_table("usage_records")
