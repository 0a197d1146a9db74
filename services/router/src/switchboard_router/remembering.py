"""Session memory and RAG on the request path, for requests that name `session_id` or
`rag_collection`: memory's `BuildContext` gives the messages to send (earlier turns within the
budget, the collection's best chunks), and after the answer `AppendTurn` stores the request's
messages and the answer the client received, once per usage event id (memory ignores a repeated
turn id). A request that names neither never reaches this module.

A streamed session answer is written to the router's journal as it goes (at its first piece, then
at most once every `snapshot_seconds`, and as it ended), a whole one before it is sent, until
memory has it: a router killed mid-stream (or between sending an answer and storing it) stores
the turn at its next start with what it had, outcome INTERRUPTED, and a turn whose append found
memory unreachable is stored then too. A turn cut before its first
piece is not stored: the client saw only an error and will send it again.

A memory service that cannot be reached fails only these requests, with a 503; an append that
fails after the answer is logged (the client has its answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import orjson
import stamina
import structlog
from google.protobuf import json_format
from google.protobuf.struct_pb2 import ListValue, Struct
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc
from switchboard_common import errors, grpc_client
from switchboard_common.errors import NotSupportedYet, ServiceUnavailable

from switchboard_router.codecs import sse
from switchboard_router.domain import Caller, Endpoint, ParsedRequest, RequestContext
from switchboard_router.journal import UsageJournal

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


class MemoryRpc:
    """A typed client of one of memory's services: a deadline on every call; memory unreachable
    (down, or past the deadline) is a 503 saying what needs it, memory's own errors keep theirs."""

    needed_by = "requests naming session_id or rag_collection need it. Try again later."

    def __init__(self, target: str, service: str, stub: Callable[[grpc.aio.Channel], Any],
                 timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, service)
        self._stub = stub(self._channel)
        self._timeout = timeout_seconds

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _UNREACHABLE:
                raise MemoryUnavailable(f"The memory service is unavailable "
                                        f"({exc.code().name.lower()}); {self.needed_by}") from None
            raise errors.from_rpc_error(exc, service="memory") from None

    async def close(self) -> None:
        await self._channel.close()


class MemoryClient(MemoryRpc):
    """MemoryService's internal RPCs."""

    def __init__(self, target: str, timeout_seconds: float) -> None:
        super().__init__(target, SERVICE, memory_pb2_grpc.MemoryServiceStub, timeout_seconds)

    async def build_context(self, request: memory_pb2.BuildContextRequest
                            ) -> memory_pb2.BuildContextResponse:
        return await self._call(self._stub.BuildContext, request)

    async def append_turn(self, request: memory_pb2.AppendTurnRequest
                          ) -> memory_pb2.AppendTurnResponse:
        return await self._call(self._stub.AppendTurn, request)


@dataclass(slots=True)
class Turn:
    """What AppendTurn will store: the client's messages (after input guardrails) and when."""

    session_id: str
    messages: list[Any]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Memory:
    def __init__(self, client: MemoryClient, context_windows: dict[str, int] | None = None, *,
                 journal: UsageJournal | None = None, snapshot_seconds: float = 1.0) -> None:
        self._client = client
        self._windows = context_windows or {}  # model name or alias -> its context window
        self._appends: set[asyncio.Task] = set()
        self.journal = journal  # None: a crash mid-stream loses the turn (tools, unit tests)
        self.snapshot_seconds = snapshot_seconds
        self._replaying: asyncio.Task | None = None

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

    async def append(self, message: memory_pb2.AppendTurnRequest, journaled: bool = False) -> bool:
        """False when memory was unreachable: a journaled turn stays in the journal, for the next
        start. A turn memory refused is dropped (it would be refused again)."""
        try:
            reply = await self._client.append_turn(message)
        except MemoryUnavailable:
            _log.warning("turn not stored: memory unreachable", kept_in_journal=journaled)
            return False
        except errors.ApiError as exc:
            _log.warning("turn not stored", error=exc.code, session_known=bool(message.session_id))
        else:
            if reply.already_stored:
                _log.info("turn stored before; not again")
        if journaled and self.journal is not None:
            self.journal.turn_stored(message.turn_id)
        return True

    def append_later(self, message: memory_pb2.AppendTurnRequest, journaled: bool = False) -> None:
        """Off the request's task: it may be cancelled (the client went away)."""
        task = asyncio.get_running_loop().create_task(self.append(message, journaled))
        self._appends.add(task)
        task.add_done_callback(self._appends.discard)

    def replay(self, turns: list[tuple[str, bytes]]) -> None:
        """At start: store the journal's unstored turns (`UsageJournal.unstored_turns`), trying
        again while memory is unreachable; memory keeps each turn id once, so a replay that
        runs twice (a crash during this one) stores nothing twice."""
        if turns:
            self._replaying = asyncio.get_running_loop().create_task(self._replay(turns))

    async def _replay(self, turns: list[tuple[str, bytes]]) -> None:
        waiting = []
        for turn_id, payload in turns:
            try:
                waiting.append(memory_pb2.AppendTurnRequest.FromString(payload))
            except Exception:  # noqa: BLE001 - a record that passed its CRC but does not parse
                _log.warning("unreadable journaled turn dropped")
                if self.journal is not None:
                    self.journal.turn_stored(turn_id)
        async for attempt in stamina.retry_context(on=MemoryUnavailable, attempts=None,
                                                   timeout=None, wait_max=30.0):
            with attempt:
                waiting = [m for m in waiting if not await self.append(m, journaled=True)]
                if waiting:
                    raise MemoryUnavailable("memory unreachable; journaled turns wait")
        _log.info("journaled turns stored", count=len(turns))

    async def drain(self) -> None:
        """Turns being stored finish; journaled ones still waiting for memory stay for the next
        start."""
        if self._replaying is not None:
            self._replaying.cancel()
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
        self._journal = memory.journal
        self._changed = False  # the answer grew since the last snapshot
        self._next_snapshot = 0.0  # monotonic: the first text is written at once
        self._journaled = False  # the journal holds this turn (until memory has it)

    async def piece(self, data: bytes) -> bytes:
        if self._decoder is None:
            answer = orjson.loads(data)
            choices = answer.get("choices") if isinstance(answer, dict) else None
            if choices and isinstance(choices[0], dict):
                message = choices[0].get("message")
                self._whole = message if isinstance(message, dict) else None
            if self._journal is not None and self._whole is not None:
                # Journaled before the client has it: a crash before memory stores it (right
                # after it is sent) leaves it to the next start, as interrupted (it may not have
                # reached the client).
                self._journal.turn(self._turn_id, self._message(
                    memory_pb2.TURN_OUTCOME_INTERRUPTED).SerializeToString())
                self._journaled = True
            return data
        for event in self._decoder.feed(data):
            if event.data is not None and event.data.startswith(b"{"):
                self._delta(orjson.loads(event.data))
        if self._journal is not None and self._changed and time.monotonic() >= self._next_snapshot:
            self._journal.turn(self._turn_id, self._message(
                memory_pb2.TURN_OUTCOME_INTERRUPTED).SerializeToString())
            self._changed, self._journaled = False, True
            self._next_snapshot = time.monotonic() + self._memory.snapshot_seconds
        return data

    def _delta(self, chunk: Any) -> None:
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not choices or not isinstance(choices[0], dict) or choices[0].get("index", 0) != 0:
            return
        delta = choices[0].get("delta") or {}
        if isinstance(delta.get("content"), str):
            self._content.append(delta["content"])
            self._changed = self._changed or bool(delta["content"])
        for call in delta.get("tool_calls") or ():
            slot = self._tool_calls.setdefault(int(call.get("index", 0)), {
                "id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            slot["id"] = call.get("id") or slot["id"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""
            self._changed = True

    def _answer(self) -> dict[str, Any] | None:
        if self._whole is not None:
            return {k: v for k, v in self._whole.items() if v is not None}
        if not self._content and not self._tool_calls:
            return None
        answer: dict[str, Any] = {"role": "assistant", "content": "".join(self._content)}
        if self._tool_calls:
            answer["tool_calls"] = [self._tool_calls[i] for i in sorted(self._tool_calls)]
        return answer

    def _message(self, outcome: memory_pb2.TurnOutcome.ValueType) -> memory_pb2.AppendTurnRequest:
        listed = ListValue()
        listed.extend(self._turn.messages)
        started = Timestamp()
        started.FromDatetime(self._turn.started_at)
        message = memory_pb2.AppendTurnRequest(
            key_id=self._caller.key_id, tenant_id=self._caller.tenant_id,
            session_id=self._turn.session_id, request_id=self._ctx.request_id, messages=listed,
            turn_id=self._turn_id, started_at=started, model=self._model, outcome=outcome)
        answer = self._answer()
        if answer is not None:
            message.answer.CopyFrom(_struct(answer))
        return message

    async def end(self, completed: bool) -> None:
        message = self._message(memory_pb2.TURN_OUTCOME_COMPLETE if completed
                                else memory_pb2.TURN_OUTCOME_CLIENT_ABORT)
        if self._journal is not None and self._journaled:
            # As it ended, in case memory cannot take it now: the next start sends it then.
            self._journal.turn(self._turn_id, message.SerializeToString())
        if completed:
            # Awaited: the client's next turn, sent as soon as this answer ends, must see it.
            await self._memory.append(message, self._journaled)
        else:
            self._memory.append_later(message, self._journaled)


def _struct(value: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(value)
    return out
