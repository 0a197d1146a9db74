"""Initial schema: tenants and keys, as `create_all` made them before migrations existed.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:14:27.158918

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
        "tenants",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("guardrail_policy_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("allowed_models", sa.JSON(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("tokens_per_minute", sa.Integer(), nullable=True),
        sa.Column("max_budget_micros_usd", sa.BigInteger(), nullable=True),
        sa.Column("guardrail_policy_ids", sa.JSON(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index("ix_keys_key_hash", "keys", ["key_hash"], unique=True)
    op.create_index("ix_keys_tenant_created", "keys", ["tenant_id", "created_at", "key_id"])
    op.create_index("ix_keys_created", "keys", ["created_at", "key_id"])


def downgrade() -> None:
    op.drop_index("ix_keys_created", table_name="keys")
    op.drop_index("ix_keys_tenant_created", table_name="keys")
    op.drop_index("ix_keys_key_hash", table_name="keys")
    op.drop_table("keys")
    op.drop_table("tenants")
