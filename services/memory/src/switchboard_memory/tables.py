"""Memory's tables; alembic migrations in migrations/ make them. Names carry a `memory_` prefix:
several services may share one database."""

from __future__ import annotations

from sqlalchemy import (BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table,
                        Text, UniqueConstraint)

from switchboard_common.sqltypes import UtcDateTime

metadata = MetaData()

# SQLite assigns rowids only to an INTEGER PRIMARY KEY; PostgreSQL takes a BIGINT identity.
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

sessions = Table(
    "memory_sessions", metadata,
    Column("tenant_id", String(200), primary_key=True),
    Column("session_id", String(200), primary_key=True),
    Column("key_id", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("turn_count", Integer, nullable=False),
    Column("system_prompt", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("summary_through_at", UtcDateTime, nullable=True),
    Column("summary_through_turn", String(200), nullable=True),
    Index("ix_memory_sessions_tenant_updated", "tenant_id", "updated_at", "session_id"),
    Index("ix_memory_sessions_expires", "expires_at"),
)

turns = Table(
    "memory_turns", metadata,
    Column("tenant_id", String(200), primary_key=True),
    Column("session_id", String(200), primary_key=True),
    Column("turn_id", String(200), primary_key=True),  # the router's idempotency key
    Column("started_at", UtcDateTime, nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("model", String, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("messages", Text, nullable=False),  # JSON list of chat messages
    Column("tokens", Integer, nullable=False),
    Column("embedding_model", String, nullable=False),
    Column("vectors", LargeBinary, nullable=True),  # float32, one row per message
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_memory_turns_order", "tenant_id", "session_id", "started_at", "turn_id"),
)

collections = Table(
    "memory_collections", metadata,
    Column("collection_id", String(36), primary_key=True),
    Column("tenant_id", String(200), nullable=False),
    Column("name", String(128), nullable=False),
    Column("key_id", String(200), nullable=False),
    Column("embedding_model", String, nullable=False),
    Column("dimensions", Integer, nullable=False),
    Column("chunk_tokens", Integer, nullable=False),
    Column("chunk_overlap_tokens", Integer, nullable=False),
    Column("documents", BigInteger, nullable=False),
    Column("chunks", BigInteger, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_memory_collections_tenant_name"),
)

documents = Table(
    "memory_documents", metadata,
    Column("collection_id", String(36), primary_key=True),
    Column("document_id", String(512), primary_key=True),
    Column("metadata", Text, nullable=False),  # JSON object of strings
    Column("content_sha256", String(64), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_memory_documents_updated", "collection_id", "updated_at", "document_id"),
)

chunks = Table(
    "memory_chunks", metadata,
    Column("row_id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("collection_id", String(36), nullable=False),
    Column("document_id", String(512), nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32, unit length
    Index("ix_memory_chunks_document", "collection_id", "document_id"),
)

ingestions = Table(
    "memory_ingestions", metadata,
    Column("ingestion_id", String(36), primary_key=True),
    Column("collection_id", String(36), nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("documents_total", Integer, nullable=False),
    Column("documents_done", Integer, nullable=False),
    Column("documents_skipped", Integer, nullable=False),
    Column("chunks_added", BigInteger, nullable=False),
    Column("error", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_memory_ingestions_collection", "collection_id"),
)

# Stored responses of OpenAI's Responses API (stored_responses.py). The id is the router's
# random "resp_..." and unique on its own; every read also names the tenant.
responses = Table(
    "memory_responses", metadata,
    Column("response_id", String(200), primary_key=True),
    Column("tenant_id", String(200), nullable=False),
    Column("key_id", String(200), nullable=False),
    Column("previous_response_id", String(200), nullable=True),
    Column("model", String, nullable=False),
    Column("status", String(16), nullable=False),
    Column("input_items", Text, nullable=False),  # JSON array of the request's input items
    Column("response", Text, nullable=False),  # JSON of the response object as answered
    Column("version", Integer, nullable=False),  # 1 when first stored, +1 at each replacement
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Index("ix_memory_responses_expires", "expires_at"),
)
