"""Output guardrails: the answer checked on its way to the client. A whole answer goes through
`CheckOutput`; a stream through one `CheckOutputStream` call, each chunk carrying on with what
guardrails releases (it holds back only what a match could still span), the finish chunk with the
rest. A block stops the answer after what was released; guardrails lost midway fails as the
policy says (open: what was held goes out, the rest unscanned)."""

from __future__ import annotations

import time
from typing import Any, cast

import grpc
import orjson
from switchboard.guardrails.v1 import guardrails_pb2 as pb
from switchboard_common.errors import NotSupportedYet

from switchboard_router.codecs import sse
from switchboard_router.domain import Endpoint, ParsedRequest, RequestContext
from switchboard_router.guarding import (
    Guard,
    GuardrailBlocked,
    GuardrailsUnavailable,
    Unreachable,
    blocked,
    report,
    translated,
)


def watch(guard: Guard, request: ParsedRequest, policies: tuple[str, ...], ctx: RequestContext,
          restorations: dict[str, str]) -> WholeScan | StreamScan:
    """Who checks this answer: `restorations` put redacted originals back (reversible tokens)."""
    if request.stream:
        if request.n > 1:
            raise NotSupportedYet("n", "with a guardrail policy a stream is scanned for one "
                                       "choice only; send n=1 (issue 18)")
        return StreamScan(guard, policies, restorations, ctx, request.endpoint)
    return WholeScan(guard, policies, restorations, ctx, request.endpoint)


def _text_path(endpoint: Endpoint, stream: bool) -> tuple[str, str]:
    """Where a choice's text is: (the choice's object, the field)."""
    if endpoint is Endpoint.COMPLETIONS:
        return "", "text"
    return ("delta" if stream else "message"), "content"


class WholeScan:
    """A whole (not streamed) answer: each choice's text checked with CheckOutput."""

    def __init__(self, guard: Guard, policies: tuple[str, ...], restorations: dict[str, str],
                 ctx: RequestContext, endpoint: Endpoint) -> None:
        self._guard, self._policies, self._restorations = guard, policies, restorations
        self._ctx = ctx
        self._holder, self._field = _text_path(endpoint, False)

    async def piece(self, data: bytes) -> bytes:
        answer = orjson.loads(data)
        changed = False
        # Anthropic's own message (inbound/native.py): its text blocks are what is checked.
        holders: list[Any]
        if not isinstance(answer, dict):
            holders = []
        elif self._ctx.native:
            holders = [b for b in answer.get("content") or () if isinstance(b, dict)
                       and b.get("type") == "text"]
        else:
            holders = [c.get(self._holder) if self._holder and isinstance(c, dict) else c
                       for c in answer.get("choices") or ()]
        field_name = "text" if self._ctx.native else self._field
        for holder in holders:
            text = holder.get(field_name) if isinstance(holder, dict) else None
            if not isinstance(text, str) or not text:
                continue
            try:
                reply = await self._guard.client.check_output(pb.CheckOutputRequest(
                    policy_ids=self._policies, text=text, request_id=self._ctx.request_id,
                    final=True, restorations=self._restorations))
            except Unreachable as exc:
                self._guard.unreachable(self._policies, str(exc), self._ctx)
                return data
            report(self._ctx, reply.findings)
            if reply.action == pb.ACTION_BLOCK:
                raise blocked(reply.findings, "answer")
            if reply.HasField("redacted_text"):
                holder[field_name] = reply.redacted_text
                changed = True
        return orjson.dumps(answer) if changed else data

    async def end(self, completed: bool) -> None:
        return None


class StreamScan:
    """A streamed answer through one CheckOutputStream call: each chunk's text is sent, and the
    chunk carries on with what guardrails releases (the rest is held until more text shows it
    is no match). The chunk with the finish reason also carries everything still held."""

    def __init__(self, guard: Guard, policies: tuple[str, ...], restorations: dict[str, str],
                 ctx: RequestContext, endpoint: Endpoint) -> None:
        self._guard, self._policies, self._restorations = guard, policies, restorations
        self._ctx = ctx
        self._holder, self._field = _text_path(endpoint, True)
        self._decoder = sse.SseDecoder()
        self._call: grpc.aio.StreamStreamCall | None = None
        self._done = False  # the scan is over: final sent, or guardrails lost (fail open)
        self._held = ""  # the text sent whose release is pending (for fail open)
        self._lost = False  # guardrails was lost: the rest passes unscanned (fail open)
        self._text_block: int | None = None  # Anthropic's stream: the text block being scanned

    async def piece(self, data: bytes) -> bytes:
        if self._done and (self._lost or not self._ctx.native):
            return data
        out: list[bytes] = []
        changed = False
        for event in self._decoder.feed(data):
            try:
                replaced = await self._event(event)
            except GuardrailBlocked as exc:
                exc.released = b"".join(out)
                raise
            changed = changed or replaced is not None
            out.append(replaced if replaced is not None else event.raw + b"\n\n")
        return b"".join(out) if changed else data

    async def _event(self, event: sse.SseEvent) -> bytes | None:
        """The event to send instead of this one, or None to send it as it was."""
        if self._ctx.native:
            return await self._native_event(event)
        if self._done or event.data is None or not event.data.startswith(b"{"):
            return None
        chunk = orjson.loads(event.data)
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        holder = choice.get(self._holder) if self._holder else choice
        if not isinstance(holder, dict):
            return None
        text = holder.get(self._field)
        text = text if isinstance(text, str) else ""
        final = choice.get("finish_reason") is not None
        if not text and not final:
            return None
        released = await self._scan(text, final)
        if released is None:  # guardrails lost, failing open: what it held, then pass through
            released = self._held + text
            self._held = ""
        if released or self._field in holder:
            holder[self._field] = released
        return sse.encode(orjson.dumps(chunk))

    async def _native_event(self, event: sse.SseEvent) -> bytes | None:
        """Anthropic's own stream: each text block is one scan, its last release sent as a
        text_delta just before the block's content_block_stop."""
        if self._lost or event.event not in ("content_block_start", "content_block_delta",
                                             "content_block_stop") or not event.data:
            return None
        payload = orjson.loads(event.data)
        if event.event == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "text":
                self._text_block, self._done, self._call = payload.get("index"), False, None
            return None
        if payload.get("index") != self._text_block or self._done:
            return None
        if event.event == "content_block_stop":
            released = await self._scan("", True)
            released = self._held if released is None else released
            self._text_block = None
            if not released:
                return None
            return sse.encode(orjson.dumps({"type": "content_block_delta", "index": payload["index"],
                                            "delta": {"type": "text_delta", "text": released}}),
                              "content_block_delta") + event.raw + b"\n\n"
        delta = payload.get("delta") or {}
        if delta.get("type") != "text_delta" or not delta.get("text"):
            return None
        released = await self._scan(delta["text"], False)
        if released is None:
            released, self._held = self._held + delta["text"], ""
        delta["text"] = released
        return sse.encode(orjson.dumps(payload), "content_block_delta")

    async def _scan(self, text: str, final: bool) -> str | None:
        message = pb.CheckOutputStreamRequest(text=text, final=final)
        started = time.perf_counter()
        try:
            if self._call is None:
                left = self._ctx.deadline - started
                self._call = self._guard.client.output_stream(
                    left if left < float("inf") else 300.0)
                message.policy_ids.extend(self._policies)
                message.request_id = self._ctx.request_id
                message.restorations.update(self._restorations)
            await self._call.write(message)
            answer = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            failure = translated(exc)
            if not isinstance(failure, Unreachable):
                raise failure from None
            self._done = self._lost = True
            self._guard.unreachable(self._policies, str(failure), self._ctx)
            return None
        if answer is grpc.aio.EOF:
            raise GuardrailsUnavailable("The guardrails service ended the output scan early.")
        reply = cast(pb.CheckOutputStreamResponse, answer)
        self._held = (self._held + text)[-reply.held_chars:] if reply.held_chars else ""
        if reply.action == pb.ACTION_BLOCK:
            self._done = True
            raise blocked(reply.findings, "answer")
        if final:
            self._done = True
        return reply.release_text

    async def end(self, completed: bool) -> None:
        if self._call is not None and not self._call.done():
            self._call.cancel()

