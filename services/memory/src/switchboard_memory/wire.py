"""Proto <-> domain conversions for MemoryService, so the servicer stays a list of calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf import json_format, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.memory.v1 import memory_pb2

from switchboard_common.errors import InvalidRequest

from switchboard_memory.context import Context, ContextRequest
from switchboard_memory.domain import Collection, DocumentInfo, DocumentInput, Hit, Ingestion
from switchboard_memory.domain import Session as SessionRecord
from switchboard_memory.domain import Turn as TurnRecord
from switchboard_memory.sessions import NewTurn

OUTCOME_IN = {memory_pb2.TURN_OUTCOME_UNSPECIFIED: "complete",
              memory_pb2.TURN_OUTCOME_COMPLETE: "complete",
              memory_pb2.TURN_OUTCOME_CLIENT_ABORT: "client_abort",
              memory_pb2.TURN_OUTCOME_INTERRUPTED: "interrupted"}
OUTCOME_OUT = {"complete": memory_pb2.TURN_OUTCOME_COMPLETE,
               "client_abort": memory_pb2.TURN_OUTCOME_CLIENT_ABORT,
               "interrupted": memory_pb2.TURN_OUTCOME_INTERRUPTED}
STATE_OUT = {"running": memory_pb2.INGESTION_STATE_RUNNING,
             "succeeded": memory_pb2.INGESTION_STATE_SUCCEEDED,
             "failed": memory_pb2.INGESTION_STATE_FAILED}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def messages_in(value: struct_pb2.ListValue, field: str = "messages") -> list[dict[str, Any]]:
    messages = json_format.MessageToDict(value)
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest(f"'{field}' must be an array of message objects.", param=field,
                             code="invalid_type")
    return messages


def messages_out(messages: list[dict[str, Any]]) -> struct_pb2.ListValue:
    out = struct_pb2.ListValue()
    out.extend(cast(list[Any], messages))  # the stubs list Struct, but plain dicts convert
    return out


def context_request(r: memory_pb2.BuildContextRequest) -> ContextRequest:
    if not r.tenant_id:
        raise InvalidRequest("'tenant_id' is required: the caller's tenant.", param="tenant_id")
    return ContextRequest(
        tenant_id=r.tenant_id, messages=messages_in(r.messages), session_id=r.session_id,
        rag_collection=r.rag_collection, rag_top_k=r.rag_top_k, model=r.model,
        context_window_tokens=_non_negative(r.context_window_tokens, "context_window_tokens"),
        reserve_output_tokens=_non_negative(r.reserve_output_tokens, "reserve_output_tokens"),
        extra_prompt_tokens=_non_negative(r.extra_prompt_tokens, "extra_prompt_tokens"),
        max_history_tokens=(r.max_history_tokens if r.HasField("max_history_tokens") else None),
        recall_top_k=r.recall_top_k if r.HasField("recall_top_k") else None,
        exclude_chunk_ids=tuple(r.exclude_chunk_ids))


def context_response(c: Context) -> memory_pb2.BuildContextResponse:
    return memory_pb2.BuildContextResponse(
        messages=messages_out(c.messages), history_messages=c.history_messages,
        rag_chunks=len(c.chunks), chunks=[memory_pb2.ContextChunk(
            chunk_id=h.chunk_id, document_id=h.document_id, score=h.score, text=h.text)
            for h in c.chunks],
        history_turns=c.history_turns, recalled_turns=c.recalled_turns,
        dropped_turns=c.dropped_turns, summary_used=c.summary_used,
        prompt_tokens=c.prompt_tokens, history_tokens=c.history_tokens)


def new_turn(r: memory_pb2.AppendTurnRequest) -> NewTurn:
    if not r.tenant_id:
        raise InvalidRequest("'tenant_id' is required: the caller's tenant.", param="tenant_id")
    return NewTurn(
        tenant_id=r.tenant_id, key_id=r.key_id, session_id=r.session_id, turn_id=r.turn_id,
        messages=messages_in(r.messages),
        answer=json_format.MessageToDict(r.answer) if r.HasField("answer") else None,
        started_at=r.started_at.ToDatetime(tzinfo=UTC) if r.HasField("started_at") else None,
        model=r.model, outcome=OUTCOME_IN[r.outcome], request_id=r.request_id)


def session(s: SessionRecord, turns: list[TurnRecord] | None = None) -> memory_pb2.Session:
    out = memory_pb2.Session(
        session_id=s.session_id, tenant_id=s.tenant_id, key_id=s.key_id,
        created_at=timestamp(s.created_at), updated_at=timestamp(s.updated_at),
        expires_at=timestamp(s.expires_at), turn_count=s.turn_count)
    if turns is not None:
        out.system_prompt = s.system_prompt
        out.summary = s.summary
        out.messages.CopyFrom(messages_out([m for t in turns for m in t.messages]))
        out.turns.extend(memory_pb2.Turn(
            turn_id=t.turn_id, started_at=timestamp(t.started_at), model=t.model,
            message_count=len(t.messages), tokens=t.tokens,
            outcome=OUTCOME_OUT.get(t.outcome, memory_pb2.TURN_OUTCOME_UNSPECIFIED),
            summarized=bool(s.summary_through and t.order <= s.summary_through),
            request_id=t.request_id) for t in turns)
    return out


def collection(c: Collection) -> memory_pb2.Collection:
    return memory_pb2.Collection(
        name=c.name, documents=c.documents, chunks=c.chunks, created_at=timestamp(c.created_at),
        tenant_id=c.tenant_id, embedding_model=c.embedding_model, dimensions=c.dimensions,
        chunk_tokens=c.chunk_tokens, chunk_overlap_tokens=c.chunk_overlap_tokens,
        updated_at=timestamp(c.updated_at), key_id=c.key_id)


def documents_in(r: memory_pb2.AddDocumentsRequest) -> list[DocumentInput]:
    return [DocumentInput(id=d.id, text=d.text, metadata=dict(d.metadata)) for d in r.documents]


def ingestion(j: Ingestion) -> memory_pb2.Ingestion:
    return memory_pb2.Ingestion(
        ingestion_id=j.ingestion_id, collection=j.collection, state=STATE_OUT[j.state],
        documents_total=j.documents_total, documents_done=j.documents_done,
        documents_skipped=j.documents_skipped, chunks_added=j.chunks_added, error=j.error,
        created_at=timestamp(j.created_at), updated_at=timestamp(j.updated_at))


def document_info(d: DocumentInfo) -> memory_pb2.DocumentInfo:
    return memory_pb2.DocumentInfo(id=d.id, metadata=d.metadata, chunks=d.chunks, tokens=d.tokens,
                                   created_at=timestamp(d.created_at),
                                   updated_at=timestamp(d.updated_at))


def chunk(h: Hit) -> memory_pb2.Chunk:
    return memory_pb2.Chunk(document_id=h.document_id, text=h.text, score=h.score,
                            chunk_id=h.chunk_id, chunk_index=h.chunk_index, metadata=h.metadata,
                            similarity=h.similarity)


def filter_in(r: memory_pb2.QueryCollectionRequest) -> dict[str, Any]:
    return json_format.MessageToDict(r.filter) if r.HasField("filter") else {}


def _non_negative(value: int, field: str) -> int:
    if value < 0:
        raise InvalidRequest(f"'{field}' must not be negative.", param=field,
                             code="invalid_value")
    return value

