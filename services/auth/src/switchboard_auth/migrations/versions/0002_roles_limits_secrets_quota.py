"""Roles, owners, all four rate limits, tenant defaults, rotatable secrets and quota counters.

Keys from before keep working: each key's hash moves to key_secrets (the secret itself was never
stored, so nothing else changes for its holder), `is_admin` becomes role "admin" (else "member"),
and the hint is the stored prefix alone (the last 4 characters were never kept).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:43:44.300932

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _limits(batch_op) -> None:
    batch_op.add_column(sa.Column("tokens_per_day", sa.BigInteger(), nullable=True))
    batch_op.add_column(sa.Column("max_parallel_requests", sa.Integer(), nullable=True))
    batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def upgrade() -> None:
    op.create_table(
        "auth_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "key_secrets",
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("secret_hash"),
    )
    op.create_index("ix_key_secrets_key_id", "key_secrets", ["key_id"])
    op.create_table(
        "parallel_leases",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("replica_id", sa.String(length=128), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("last_grant", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "replica_id"),
    )
    op.create_table(
        "quota_counters",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("last_grant", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "kind", "window_start"),
    )
    op.create_index("ix_quota_counters_window", "quota_counters", ["window_start"])

    op.execute("INSERT INTO key_secrets (secret_hash, key_id, created_at, expires_at) "
               "SELECT key_hash, key_id, created_at, NULL FROM keys")
    with op.batch_alter_table("keys") as batch_op:
        # server defaults fill the rows that exist; the application always sets these itself.
        batch_op.add_column(sa.Column("user_id", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("role", sa.String(length=16), nullable=False,
                                      server_default="member"))
        batch_op.add_column(sa.Column("key_hint", sa.String(length=32), nullable=False,
                                      server_default=""))
        _limits(batch_op)
    op.execute("UPDATE keys SET role = 'admin' WHERE is_admin")
    op.execute("UPDATE keys SET key_hint = key_prefix || '...'")
    with op.batch_alter_table("keys") as batch_op:
        for column in ("user_id", "role", "key_hint"):
            batch_op.alter_column(column, server_default=None)
        batch_op.drop_index("ix_keys_key_hash")
        batch_op.create_index("ix_keys_user_created", ["user_id", "created_at", "key_id"])
        batch_op.drop_column("is_admin")
        batch_op.drop_column("key_hash")

    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(sa.Column("requests_per_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tokens_per_minute", sa.Integer(), nullable=True))
        _limits(batch_op)


def downgrade() -> None:
    """Back to one secret per key (the newest) and is_admin; owners, roles other than admin,
    the new limits, tenant defaults and quota counters are dropped."""
    with op.batch_alter_table("tenants") as batch_op:
        for column in ("updated_at", "max_parallel_requests", "tokens_per_day",
                       "tokens_per_minute", "requests_per_minute"):
            batch_op.drop_column(column)

    with op.batch_alter_table("keys") as batch_op:
        batch_op.add_column(sa.Column("key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.execute("UPDATE keys SET is_admin = (role = 'admin')")
    op.execute("UPDATE keys SET key_hash = (SELECT s.secret_hash FROM key_secrets s "
               "WHERE s.key_id = keys.key_id ORDER BY s.created_at DESC LIMIT 1)")
    op.execute("DELETE FROM keys WHERE key_hash IS NULL")
    with op.batch_alter_table("keys") as batch_op:
        batch_op.alter_column("key_hash", nullable=False, existing_type=sa.String(length=64))
        batch_op.alter_column("is_admin", server_default=None, existing_type=sa.Boolean())
        batch_op.drop_index("ix_keys_user_created")
        batch_op.create_index("ix_keys_key_hash", ["key_hash"], unique=True)
        for column in ("updated_at", "max_parallel_requests", "tokens_per_day", "key_hint",
                       "role", "user_id"):
            batch_op.drop_column(column)

    op.drop_index("ix_quota_counters_window", table_name="quota_counters")
    op.drop_table("quota_counters")
    op.drop_table("parallel_leases")
    op.drop_index("ix_key_secrets_key_id", table_name="key_secrets")
    op.drop_table("key_secrets")
    op.drop_table("auth_settings")
