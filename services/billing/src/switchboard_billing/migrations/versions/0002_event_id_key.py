"""Usage records are keyed by the router's event id; request_id (x-request-id) may repeat.

Rows stored before have event_id = request_id: they were unique by it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 11:30:00

"""

import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = "usage_records_pkey"  # PostgreSQL's name for the primary key create_table made


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("event_id", sa.String(length=200), nullable=True))
    op.execute("UPDATE usage_records SET event_id = request_id")
    op.drop_index("ix_usage_time", table_name="usage_records")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PK, "usage_records", type_="primary")
        op.alter_column("usage_records", "event_id", nullable=False)
        op.create_primary_key(PK, "usage_records", ["event_id"])
    else:  # SQLite: the table is copied with the new key
        with _new_key_replaces_the_reflected_one(), op.batch_alter_table(
                "usage_records", recreate="always") as batch:
            batch.alter_column("event_id", nullable=False)
            batch.create_primary_key(PK, ["event_id"])
    op.create_index("ix_usage_time", "usage_records", ["occurred_at", "event_id"])
    op.create_index("ix_usage_request", "usage_records", ["request_id"])


def downgrade() -> None:
    # Only possible while request ids are still unique.
    op.drop_index("ix_usage_request", table_name="usage_records")
    op.drop_index("ix_usage_time", table_name="usage_records")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PK, "usage_records", type_="primary")
        op.create_primary_key(PK, "usage_records", ["request_id"])
        op.drop_column("usage_records", "event_id")
    else:
        with _new_key_replaces_the_reflected_one(), op.batch_alter_table(
                "usage_records", recreate="always") as batch:
            batch.create_primary_key(PK, ["request_id"])
            batch.drop_column("event_id")
    op.create_index("ix_usage_time", "usage_records", ["occurred_at", "request_id"])


@contextmanager
def _new_key_replaces_the_reflected_one():
    # Batch mode reflects the old key column as primary and SQLAlchemy warns that the new key
    # wins, which is what is meant (the copied table has exactly the new key).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_usage_records' specifies columns",
                                sa.exc.SAWarning)
        yield
