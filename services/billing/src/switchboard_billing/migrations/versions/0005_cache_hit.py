"""Usage records say whether the router answered from its response cache (cost 0), as the
usage event's cache_hit does.

Rows stored before were all answered by a provider: false.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("cache_hit", sa.Boolean(), nullable=False,
                                             server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("usage_records", "cache_hit")
