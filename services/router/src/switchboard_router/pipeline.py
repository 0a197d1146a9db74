"""The steps around the provider call where guardrails and memory plug in: before it (`prepare`)
and on the answer as it passes to the client (`observer`).

Input guardrails run when the key or tenant has a policy (guarding.py); memory builds context when
the request names a session or a RAG collection (remembering.py), from the messages the input
check let through, so redacted text is what memory stores. Output guardrails, then memory's turn
recorder, watch the answer: the recorder stores what the client received. The common request (no
policy, no session) costs one branch here and makes no call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from switchboard_router import answer_scan
from switchboard_router.domain import Caller, ParsedRequest, RequestContext
from switchboard_router.guarding import HEADER, Guard, requested_policies
from switchboard_router.remembering import SOURCES_HEADER, Memory, Turn
from switchboard_router.usage import Exchange


class AnswerObserver(Protocol):
    """Sees the answer on its way to the client, and may change or stop it (by raising ApiError)."""

    async def piece(self, data: bytes) -> bytes:
        """One message of the answer (the whole JSON, or complete SSE events); returns the bytes
        to send instead (the same object when nothing changes)."""

    async def end(self, completed: bool) -> None:
        """The answer is over: sent whole (`completed`), or cut by an error or the client."""


@dataclass(slots=True)
class Prepared:
    """A request made ready for the provider, and who must watch its answer (None: nobody)."""

    request: ParsedRequest
    observer: AnswerObserver | None


class Pipeline:
    def __init__(self, guard: Guard | None = None, memory: Memory | None = None, *,
                 default_policy_ids: tuple[str, ...] = ()) -> None:
        self._guard = guard
        self._memory = memory
        self._default_policies = default_policy_ids  # switchboard.yaml's, for every request

    def needed(self, request: ParsedRequest, caller: Caller, ctx: RequestContext) -> bool:
        return bool(self._default_policies or caller.guardrail_policy_ids or request.session_id
                    or request.rag_collection or ctx.requested_policies)

    def policies(self, caller: Caller, ctx: RequestContext) -> tuple[str, ...]:
        """The gateway's default policies, then the caller's (its tenant's and its own), then
        the ones the request adds: a request can tighten its policy, never loosen it."""
        if not self._default_policies and not ctx.requested_policies:
            return caller.guardrail_policy_ids
        return tuple(dict.fromkeys((*self._default_policies, *caller.guardrail_policy_ids,
                                    *requested_policies(ctx.requested_policies))))

    async def prepare(self, request: ParsedRequest, caller: Caller, ctx: RequestContext,
                      turn_id: str) -> Prepared:
        """Asked only when `needed` says so; `turn_id` is the request's usage event id."""
        observers: list[AnswerObserver] = []
        policies = self.policies(caller, ctx)
        if policies:
            assert self._guard is not None, "bootstrap always builds the guard"
            sent = request.body
            verdict = await self._guard.check_input(request, policies, ctx)
            request = verdict.request
            if request.body is not sent:
                # Redacted: the translated body carries the redaction, the client's own does not.
                ctx.native_body = None
            if verdict.check_output:
                observers.append(answer_scan.watch(self._guard, request, policies, ctx,
                                                   verdict.restorations))
        turn: Turn | None = None
        if request.session_id or request.rag_collection:
            assert self._memory is not None, "bootstrap always builds memory's client"
            screen = None
            if policies and request.rag_collection and self._guard is not None:
                guard = self._guard
                async def screen(texts: list[str]) -> set[int]:
                    return await guard.screen(texts, policies, ctx)
            request, turn = await self._memory.build(request, caller, ctx, screen)
        if turn is not None:
            assert self._memory is not None
            observers.append(self._memory.observer(turn, request, caller, ctx, turn_id))
        if not observers:
            return Prepared(request, None)
        return Prepared(request, observers[0] if len(observers) == 1 else _Chain(observers))


def annotate(ex: Exchange, ctx: RequestContext) -> None:
    """The usage record says what the response headers said (the stream's later findings too)."""
    headers = dict(ctx.headers)
    ex.guardrails = headers.get(HEADER, "")
    ex.rag_sources = headers.get(SOURCES_HEADER, "")


class _Chain:
    """Observers in turn: each sees what the one before it lets through."""

    def __init__(self, observers: list[AnswerObserver]) -> None:
        self._observers = observers

    async def piece(self, data: bytes) -> bytes:
        for observer in self._observers:
            data = await observer.piece(data)
        return data

    async def end(self, completed: bool) -> None:
        for observer in self._observers:
            await observer.end(completed)
