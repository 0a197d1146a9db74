"""Anthropic's event stream as OpenAI's chunks, read by read: pure bytes, no I/O."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from switchboard_common.errors import ApiError, UpstreamError

from switchboard_router.codecs.anthropic_wire import (
    FINISH_REASONS,
    map_stream_error,
    openai_usage,
    tokens,
)
from switchboard_router.codecs.openai import stream_texts
from switchboard_router.codecs.sse import DONE, SseDecoder, SseEvent
from switchboard_router.completion import CompletionCounter
from switchboard_router.domain import Tokens

class AnthropicRelay:
    """One Anthropic event stream as OpenAI chunks. Holds only this stream's state: the message
    id and model, which content block is which tool call, and the usage so far."""

    def __init__(self, forward_usage: bool, count: Callable[[str], int]) -> None:
        self.usage: Tokens | None = None
        self.error: ApiError | None = None
        self.done = False
        self.completion = CompletionCounter(stream_texts, count)
        self._forward_usage = forward_usage
        self._decoder = SseDecoder()
        self._head = b""  # the fixed start of every chunk: id, object, created, model
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool-call index
        self._finish: str | None = None

    def feed(self, read: bytes) -> bytes:
        return self._translate(self._decoder.feed(read))

    def finish(self) -> bytes:
        out = self._translate(self._decoder.close())
        if self.done or self.error is not None:
            return out
        # The provider closed the stream before message_stop: the answer is cut, say so.
        self.error = UpstreamError("The provider ended the stream before the message was complete.")
        return out + _error_event(self.error)

    def completion_tokens(self) -> int:
        return self.usage.completion if self.usage is not None else self.completion.tokens()

    def _translate(self, events: list[SseEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if event.data is None or self.done or self.error is not None:
                continue
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                payload = None
            if not isinstance(payload, dict):
                self.error = UpstreamError("The provider sent a stream event that is not JSON.",
                                           code="invalid_upstream_response")
                out.append(_error_event(self.error))
                continue
            piece = self._event(payload.get("type") or event.event, payload)
            if piece:
                out.append(piece)
        data = b"".join(out)
        if data:
            self.completion.add(data)
        return data

    def _event(self, kind: Any, e: dict[str, Any]) -> bytes:
        if kind == "content_block_delta":
            delta = e.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                return self._chunk({"content": delta.get("text", "")})
            if dkind == "input_json_delta":
                index = self._tool_index.get(e.get("index", -1))
                fragment = delta.get("partial_json", "")
                if index is None or not fragment:
                    return b""
                return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            if dkind == "thinking_delta":
                return self._chunk({"reasoning_content": delta.get("thinking", "")})
            return b""  # signature_delta, citations_delta: nothing OpenAI's chunk can carry
        if kind == "content_block_start":
            block = e.get("content_block") or {}
            if block.get("type") != "tool_use":
                return b""
            index = len(self._tool_index)
            self._tool_index[e.get("index", -1)] = index
            return self._chunk({"tool_calls": [{"index": index, "id": block.get("id"), "type": "function",
                                                "function": {"name": block.get("name"), "arguments": ""}}]})
        if kind == "message_start":
            message = e.get("message") or {}
            self._head = (b'{"id":' + orjson.dumps(message.get("id")) +
                          b',"object":"chat.completion.chunk","created":' + str(int(time.time())).encode() +
                          b',"model":' + orjson.dumps(message.get("model")) + b',"choices":')
            self._usage.update(message.get("usage") or {})
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "message_delta":
            usage = {k: v for k, v in (e.get("usage") or {}).items() if v is not None}
            self._usage.update(usage)
            self.usage = tokens(self._usage)
            if self.usage is not None:
                self.completion.stop()
            reason = (e.get("delta") or {}).get("stop_reason")
            self._finish = FINISH_REASONS.get(reason or "", "stop")
            return self._chunk({}, self._finish)
        if kind == "message_stop":
            self.done = True
            tail = b""
            if self._forward_usage and self._usage:
                tail = b"data: " + self._head + b'[],"usage":' + orjson.dumps(openai_usage(self._usage)) + b"}\n\n"
            return tail + DONE
        if kind == "error":
            self.error = map_stream_error(e)
            return _error_event(self.error)
        return b""  # ping, content_block_stop, and event types added later

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + self._head + b"[" + orjson.dumps(choice) + b"]}\n\n"


def _error_event(error: ApiError) -> bytes:
    return b"data: " + orjson.dumps(error.to_openai()) + b"\n\n"
