"""Keys and tenants say whether the router's response cache answers their requests by default:
a tenant's setting (false before), a key's own (NULL: as its tenant says).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:10:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("cache_responses", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column("keys", sa.Column("cache_responses", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("keys", "cache_responses")
    op.drop_column("tenants", "cache_responses")
