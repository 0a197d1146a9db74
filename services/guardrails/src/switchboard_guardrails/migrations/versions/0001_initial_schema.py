"""Initial schema: guardrail_policies.

Revision ID: 0001
Revises:
Create Date: 2026-12-01 11:57:11.755308

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
        "guardrail_policies",
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("input_rules", sa.JSON(), nullable=False),
        sa.Column("output_rules", sa.JSON(), nullable=False),
        sa.Column("fail_mode", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("policy_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_guardrail_policies_tenant_name"),
    )
    with op.batch_alter_table("guardrail_policies", schema=None) as batch_op:
        batch_op.create_index("ix_guardrail_policies_created", ["created_at", "policy_id"],
                              unique=False)
        batch_op.create_index("ix_guardrail_policies_tenant_created",
                              ["tenant_id", "created_at", "policy_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("guardrail_policies", schema=None) as batch_op:
        batch_op.drop_index("ix_guardrail_policies_tenant_created")
        batch_op.drop_index("ix_guardrail_policies_created")
    op.drop_table("guardrail_policies")
