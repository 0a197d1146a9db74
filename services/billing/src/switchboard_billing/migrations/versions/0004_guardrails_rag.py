"""Usage records say what the guardrail checks found and which RAG chunks were used, as the
router's usage event does (x-switchboard-guardrails, x-switchboard-rag-sources).

Rows stored before found nothing and used none: "".

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("guardrails", "rag_sources")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("usage_records", sa.Column(name, sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    for name in _COLUMNS:
        op.drop_column("usage_records", name)
