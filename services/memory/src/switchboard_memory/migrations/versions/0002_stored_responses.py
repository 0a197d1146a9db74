"""Stored responses of OpenAI's Responses API.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('memory_responses',
    sa.Column('response_id', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('key_id', sa.String(length=200), nullable=False),
    sa.Column('previous_response_id', sa.String(length=200), nullable=True),
    sa.Column('model', sa.String(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('input_items', sa.Text(), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('response_id')
    )
    with op.batch_alter_table('memory_responses', schema=None) as batch_op:
        batch_op.create_index('ix_memory_responses_expires', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('memory_responses', schema=None) as batch_op:
        batch_op.drop_index('ix_memory_responses_expires')

    op.drop_table('memory_responses')
