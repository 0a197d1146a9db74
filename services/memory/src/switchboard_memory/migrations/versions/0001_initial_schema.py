"""Initial schema: sessions and turns, collections, documents, chunks and ingestions.

Revision ID: 0001
Revises:
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('memory_chunks',
    sa.Column('row_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('collection_id', sa.String(length=36), nullable=False),
    sa.Column('document_id', sa.String(length=512), nullable=False),
    sa.Column('chunk_index', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('row_id')
    )
    with op.batch_alter_table('memory_chunks', schema=None) as batch_op:
        batch_op.create_index('ix_memory_chunks_document', ['collection_id', 'document_id'], unique=False)

    op.create_table('memory_collections',
    sa.Column('collection_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('key_id', sa.String(length=200), nullable=False),
    sa.Column('embedding_model', sa.String(), nullable=False),
    sa.Column('dimensions', sa.Integer(), nullable=False),
    sa.Column('chunk_tokens', sa.Integer(), nullable=False),
    sa.Column('chunk_overlap_tokens', sa.Integer(), nullable=False),
    sa.Column('documents', sa.BigInteger(), nullable=False),
    sa.Column('chunks', sa.BigInteger(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('collection_id'),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_memory_collections_tenant_name')
    )
    op.create_table('memory_documents',
    sa.Column('collection_id', sa.String(length=36), nullable=False),
    sa.Column('document_id', sa.String(length=512), nullable=False),
    sa.Column('metadata', sa.Text(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('chunks', sa.Integer(), nullable=False),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('collection_id', 'document_id')
    )
    with op.batch_alter_table('memory_documents', schema=None) as batch_op:
        batch_op.create_index('ix_memory_documents_updated', ['collection_id', 'updated_at', 'document_id'],
                              unique=False)

    op.create_table('memory_ingestions',
    sa.Column('ingestion_id', sa.String(length=36), nullable=False),
    sa.Column('collection_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('documents_total', sa.Integer(), nullable=False),
    sa.Column('documents_done', sa.Integer(), nullable=False),
    sa.Column('documents_skipped', sa.Integer(), nullable=False),
    sa.Column('chunks_added', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ingestion_id')
    )
    with op.batch_alter_table('memory_ingestions', schema=None) as batch_op:
        batch_op.create_index('ix_memory_ingestions_collection', ['collection_id'], unique=False)

    op.create_table('memory_sessions',
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('session_id', sa.String(length=200), nullable=False),
    sa.Column('key_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('turn_count', sa.Integer(), nullable=False),
    sa.Column('system_prompt', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('summary_through_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summary_through_turn', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'session_id')
    )
    with op.batch_alter_table('memory_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_memory_sessions_expires', ['expires_at'], unique=False)
        batch_op.create_index('ix_memory_sessions_tenant_updated', ['tenant_id', 'updated_at', 'session_id'],
                              unique=False)

    op.create_table('memory_turns',
    sa.Column('tenant_id', sa.String(length=200), nullable=False),
    sa.Column('session_id', sa.String(length=200), nullable=False),
    sa.Column('turn_id', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('messages', sa.Text(), nullable=False),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.Column('embedding_model', sa.String(), nullable=False),
    sa.Column('vectors', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'session_id', 'turn_id')
    )
    with op.batch_alter_table('memory_turns', schema=None) as batch_op:
        batch_op.create_index('ix_memory_turns_order', ['tenant_id', 'session_id', 'started_at', 'turn_id'],
                              unique=False)



def downgrade() -> None:
    with op.batch_alter_table('memory_turns', schema=None) as batch_op:
        batch_op.drop_index('ix_memory_turns_order')

    op.drop_table('memory_turns')
    with op.batch_alter_table('memory_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_memory_sessions_tenant_updated')
        batch_op.drop_index('ix_memory_sessions_expires')

    op.drop_table('memory_sessions')
    with op.batch_alter_table('memory_ingestions', schema=None) as batch_op:
        batch_op.drop_index('ix_memory_ingestions_collection')

    op.drop_table('memory_ingestions')
    with op.batch_alter_table('memory_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_memory_documents_updated')

    op.drop_table('memory_documents')
    op.drop_table('memory_collections')
    with op.batch_alter_table('memory_chunks', schema=None) as batch_op:
        batch_op.drop_index('ix_memory_chunks_document')

    op.drop_table('memory_chunks')
