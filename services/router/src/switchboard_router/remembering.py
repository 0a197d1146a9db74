"""Session memory and RAG on the request path, for requests that name `session_id` or
`rag_collection`: memory's `BuildContext` gives the messages to send (earlier turns within the
budget, the collection's best chunks), and after the answer `AppendTurn` stores the request's
messages and the answer the client received, once per usage event id (memory ignores a repeated
turn id). A request that names neither never reaches this module.

A memory service that cannot be reached fails only these requests, with a 503; an append that
fails after the answer is logged (the client has its answer) and the turn is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import orjson
import structlog
from google.protobuf import json_format
from google.protobuf.struct_pb2 import ListValue, Struct
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc
from switchboard_common import errors, grpc_client
from switchboard_common.errors import NotSupportedYet, ServiceUnavailable

from switchboard_router.codecs import sse
from switchboard_router.domain import Caller, Endpoint, ParsedRequest, RequestContext

_log = structlog.get_logger("memory")
SERVICE = memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name
SOURCES_HEADER = "x-switchboard-rag-sources"
# Switchboard's own fields: for memory, never for the provider (OpenAI refuses unknown ones).
OWN_FIELDS = ("session_id", "rag_collection", "rag_top_k")
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Which of the retrieved chunks' texts must be left out (the guardrails' indirect-injection check).
Screen = Callable[[list[str]], Awaitable[set[int]]]


class MemoryUnavailable(ServiceUnavailable):
    default_code = "memory_unavailable"


class MemoryClient:
    """The typed client of MemoryService's internal RPCs, a deadline on every call."""

    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE)
        self._stub = memory_pb2_grpc.MemoryServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def build_context(self, request: memory_pb2.BuildContextRequest
                            ) -> memory_pb2.BuildContextResponse:
        return await self._call(self._stub.BuildContext, request)

    async def append_turn(self, request: memory_pb2.AppendTurnRequest
                          ) -> memory_pb2.AppendTurnResponse:
        return await self._call(self._stub.AppendTurn, request)

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _UNREACHABLE:
                raise MemoryUnavailable(
                    f"The memory service is unavailable ({exc.code().name.lower()}); requests "
                    "naming session_id or rag_collection need it. Try again later.") from None
            raise errors.from_rpc_error(exc, service="memory") from None

    async def close(self) -> None:
        await self._channel.close()


@dataclass(slots=True)
class Turn:
    """What AppendTurn will store: the client's messages (after input guardrails) and when."""

    session_id: str
    messages: list[Any]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Memory:
    def __init__(self, client: MemoryClient, context_windows: dict[str, int] | None = None) -> None:
        self._client = client
        self._windows = context_windows or {}  # model name or alias -> its context window
        self._appends: set[asyncio.Task] = set()

    async def build(self, request: ParsedRequest, caller: Caller, ctx: RequestContext,
                    screen: Screen | None = None) -> tuple[ParsedRequest, Turn | None]:
        """The request with memory's messages in place of its own (and Switchboard's fields
        taken out), and the turn to store after the answer when it names a session. `screen`
        (a guardrail policy) may leave retrieved chunks out: the context is built again without
        them."""
        if request.endpoint is not Endpoint.CHAT:
            field_name = "session_id" if request.session_id else "rag_collection"
            raise NotSupportedYet(field_name, "memory and RAG apply to chat completions "
                                              "(/v1/chat/completions) only")
        body = {k: v for k, v in request.body.items() if k not in OWN_FIELDS}
        messages = request.body["messages"]
        listed = ListValue()
        listed.extend(messages)
        asked = memory_pb2.BuildContextRequest(
            key_id=caller.key_id, tenant_id=caller.tenant_id, session_id=request.session_id or "",
            rag_collection=request.rag_collection or "",
            rag_top_k=int(request.body.get("rag_top_k") or 0), messages=listed,
            model=request.model, reserve_output_tokens=request.max_tokens or 0,
            context_window_tokens=self._windows.get(request.model, 0))
        reply = await self._client.build_context(asked)
        if screen is not None and reply.chunks:
            left_out = await screen([c.text for c in reply.chunks])
            if left_out:
                asked.exclude_chunk_ids.extend(
                    c.chunk_id for i, c in enumerate(reply.chunks) if i in left_out)
                reply = await self._client.build_context(asked)
        body["messages"] = json_format.MessageToDict(reply.messages)
        request.body = body
        if request.rag_collection:
            ctx.headers.append((SOURCES_HEADER, ",".join(c.chunk_id for c in reply.chunks)))
        turn = Turn(request.session_id, messages) if request.session_id else None
        return request, turn

    def observer(self, turn: Turn, request: ParsedRequest, caller: Caller, ctx: RequestContext,
                 turn_id: str) -> TurnRecorder:
        return TurnRecorder(self, turn, request, caller, ctx, turn_id)

    async def append(self, message: memory_pb2.AppendTurnRequest) -> None:
        try:
            reply = await self._client.append_turn(message)
        except errors.ApiError as exc:
            _log.warning("turn not stored", error=exc.code, session_known=bool(message.session_id))
            return
        if reply.already_stored:
            _log.info("turn stored before; not again")

    def append_later(self, message: memory_pb2.AppendTurnRequest) -> None:
        """Off the request's task: it may be cancelled (the client went away)."""
        task = asyncio.get_running_loop().create_task(self.append(message))
        self._appends.add(task)
        task.add_done_callback(self._appends.discard)

    async def drain(self) -> None:
        if self._appends:
            await asyncio.gather(*self._appends, return_exceptions=True)


class TurnRecorder:
    """Watches the answer as the client receives it (after output guardrails) and stores the
    turn when it ends: completed, or the part received when the client went away."""

    def __init__(self, memory: Memory, turn: Turn, request: ParsedRequest, caller: Caller,
                 ctx: RequestContext, turn_id: str) -> None:
        self._memory, self._turn, self._caller, self._ctx = memory, turn, caller, ctx
        self._model, self._turn_id, self._stream = request.model, turn_id, request.stream
        self._decoder = sse.SseDecoder() if request.stream else None
        self._content: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self._whole: dict[str, Any] | None = None

    async def piece(self, data: bytes) -> bytes:
        if self._decoder is None:
            answer = orjson.loads(data)
            choices = answer.get("choices") if isinstance(answer, dict) else None
            if choices and isinstance(choices[0], dict):
                message = choices[0].get("message")
                self._whole = message if isinstance(message, dict) else None
            return data
        for event in self._decoder.feed(data):
            if event.data is not None and event.data.startswith(b"{"):
                self._delta(orjson.loads(event.data))
        return data

    def _delta(self, chunk: Any) -> None:
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not choices or not isinstance(choices[0], dict) or choices[0].get("index", 0) != 0:
            return
        delta = choices[0].get("delta") or {}
        if isinstance(delta.get("content"), str):
            self._content.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            slot = self._tool_calls.setdefault(int(call.get("index", 0)), {
                "id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            slot["id"] = call.get("id") or slot["id"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""

    def _answer(self) -> dict[str, Any] | None:
        if self._whole is not None:
            return {k: v for k, v in self._whole.items() if v is not None}
        if not self._content and not self._tool_calls:
            return None
        answer: dict[str, Any] = {"role": "assistant", "content": "".join(self._content)}
        if self._tool_calls:
            answer["tool_calls"] = [self._tool_calls[i] for i in sorted(self._tool_calls)]
        return answer

    async def end(self, completed: bool) -> None:
        listed = ListValue()
        listed.extend(self._turn.messages)
        started = Timestamp()
        started.FromDatetime(self._turn.started_at)
        message = memory_pb2.AppendTurnRequest(
            key_id=self._caller.key_id, tenant_id=self._caller.tenant_id,
            session_id=self._turn.session_id, request_id=self._ctx.request_id, messages=listed,
            turn_id=self._turn_id, started_at=started, model=self._model,
            outcome=(memory_pb2.TURN_OUTCOME_COMPLETE if completed
                     else memory_pb2.TURN_OUTCOME_CLIENT_ABORT))
        answer = self._answer()
        if answer is not None:
            message.answer.CopyFrom(_struct(answer))
        if completed:
            # Awaited: the client's next turn, sent as soon as this answer ends, must see it.
            await self._memory.append(message)
        else:
            self._memory.append_later(message)


def _struct(value: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(value)
    return out
