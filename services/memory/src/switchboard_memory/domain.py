"""Memory's domain: sessions and their turns, collections, documents, chunks; no gRPC, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Who is asking, as auth's Authorize told us: the same type in the router and billing.
from switchboard_common.caller import Caller as Caller

Message = dict[str, Any]  # one chat message in OpenAI's format

OUTCOMES = ("complete", "client_abort", "interrupted")
# A stored response's status: the Responses API's own words.
RESPONSE_STATUSES = ("in_progress", "completed", "incomplete", "failed")
INGESTION_STATES = ("running", "succeeded", "failed")


@dataclass(frozen=True)
class Turn:
    """One exchange as stored: the request's new messages and the answer, in order."""

    turn_id: str
    started_at: datetime
    messages: list[Message]
    model: str = ""
    outcome: str = "complete"
    tokens: int = 0
    request_id: str = ""
    summarized: bool = False
    # One unit vector per message (the recall index) as a flat float32 array, or None.
    vectors: Any = None
    embedding_model: str = ""

    @property
    def order(self) -> tuple[datetime, str]:
        return self.started_at, self.turn_id


@dataclass(frozen=True)
class Session:
    tenant_id: str
    session_id: str
    key_id: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    turn_count: int = 0
    system_prompt: str = ""
    summary: str = ""
    # The last turn the summary covers (by started_at, turn_id); None: no summary.
    summary_through: tuple[datetime, str] | None = None


@dataclass(frozen=True)
class SessionPage:
    sessions: list[Session]
    next_cursor: tuple[datetime, str] | None


@dataclass(frozen=True)
class Collection:
    collection_id: str
    tenant_id: str
    name: str
    embedding_model: str
    dimensions: int
    chunk_tokens: int
    chunk_overlap_tokens: int
    key_id: str
    created_at: datetime
    updated_at: datetime
    documents: int = 0
    chunks: int = 0
    revision: int = 0  # bumped by every change of its chunks: index caches compare it


@dataclass(frozen=True)
class DocumentInput:
    id: str
    text: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    metadata: dict[str, str]
    chunks: int
    tokens: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as the index holds it."""

    row_id: int
    document_id: str
    chunk_index: int
    text: str
    vector: Any  # a float32 unit vector


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    document_id: str
    chunk_index: int
    text: str
    metadata: dict[str, str]
    score: float
    similarity: float


@dataclass(frozen=True)
class Ingestion:
    ingestion_id: str
    collection: str
    state: str
    documents_total: int
    created_at: datetime
    updated_at: datetime
    documents_done: int = 0
    documents_skipped: int = 0
    chunks_added: int = 0
    error: str = ""


@dataclass(frozen=True)
class StoredResponse:
    """A response of OpenAI's Responses API as stored: its input items and the response object
    as the client received it, both JSON text kept as sent."""

    response_id: str
    tenant_id: str
    key_id: str
    model: str
    status: str
    created_at: datetime
    input_items: str
    response: str
    previous_response_id: str | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None


def chunk_id(document_id: str, chunk_index: int) -> str:
    return f"{document_id}#{chunk_index}"


def utc_now() -> datetime:
    return datetime.now(UTC)
