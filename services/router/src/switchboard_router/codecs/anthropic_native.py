"""Anthropic's Messages API passed through (inbound/native.py): the client's body sent as it came,
the model name aside, and the answer or stream returned as the provider sent it, while the
gateway reads the usage (cache reads and writes included), the text (for a count when no usage
comes) and the errors. Pure functions of bytes, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from switchboard_common.errors import ApiError, UpstreamError

from switchboard_router.codecs.anthropic_wire import map_stream_error, message_object, tokens
from switchboard_router.codecs.base import HttpRequest
from switchboard_router.codecs.sse import SseDecoder, SseEvent, encode, split_events
from switchboard_router.completion import CompletionCounter
from switchboard_router.domain import Tokens
from switchboard_router.providers.base import Call, Reply

_MODEL = re.compile(rb'"model"\s*:\s*"(?:[^"\\]|\\.)*"')


def request(url: str, headers: dict[str, str], call: Call) -> HttpRequest:
    assert call.native is not None, "asked only for a native call"
    if call.betas:
        headers = {**headers, "anthropic-beta": ",".join(call.betas)}
    return HttpRequest(url, headers, orjson.dumps({**call.native, "model": call.upstream_model}))


def count_request(url: str, headers: dict[str, str], body: dict[str, Any], upstream_model: str,
                  betas: tuple[str, ...]) -> HttpRequest:
    """POST /v1/messages/count_tokens for a count_tokens body (already validated)."""
    if betas:
        headers = {**headers, "anthropic-beta": ",".join(betas)}
    return HttpRequest(url, headers, orjson.dumps({**body, "model": upstream_model}))


def with_model(data: bytes, model: str) -> bytes:
    """The provider's JSON with its first "model" value the client's name, the rest byte for byte."""
    replacement = b'"model":' + orjson.dumps(model)
    out, found = _MODEL.subn(lambda _: replacement, data, count=1)
    if not found and out.startswith(b"{"):  # a message without one (the SDK requires it)
        out = b"{" + replacement + b"," + out[1:]
    return out


def response(call: Call, body: bytes) -> Reply:
    message = message_object(body)
    texts = [b.get("text") or "" for b in message.get("content") or ()
             if isinstance(b, dict) and b.get("type") == "text"]
    return Reply(data=with_model(body, call.model), usage=tokens(message.get("usage")),
                 text=lambda: "".join(texts))


def stream_texts(events: bytes) -> list[str]:
    """The generated text in complete Anthropic events: text, thinking and tool arguments."""
    out: list[str] = []
    for event in split_events(events + b"\n\n")[0]:
        if event.event != "content_block_delta" or not event.data:
            continue
        delta = _json(event.data).get("delta") or {}
        for key in ("text", "thinking", "partial_json"):
            if isinstance(delta.get(key), str):
                out.append(delta[key])
    return out


class NativeRelay:
    """One Anthropic stream forwarded event by event, only whole events, each byte for byte but
    message_start's model name. Reads the usage (message_start's input counts, message_delta's
    final ones), the end (message_stop) and the errors (`event: error`, a stream cut short)."""

    def __init__(self, model: str, count: Callable[[str], int]) -> None:
        self.usage: Tokens | None = None
        self.error: ApiError | None = None
        self.done = False
        self.completion = CompletionCounter(stream_texts, count)
        self._model = model
        self._decoder = SseDecoder()
        self._usage: dict[str, Any] = {}

    def feed(self, read: bytes) -> bytes:
        return self._forward(self._decoder.feed(read))

    def finish(self) -> bytes:
        out = self._forward(self._decoder.close())
        if self.done or self.error is not None:
            return out
        self.error = UpstreamError("The provider ended the stream before the message was complete.")
        return out + encode(orjson.dumps({"type": "error", "error": {
            "type": "api_error", "message": self.error.message}}), "error")

    def completion_tokens(self) -> int:
        return self.usage.completion if self.usage is not None else self.completion.tokens()

    def _forward(self, events: list[SseEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if self.done or self.error is not None:
                break
            raw = self._event(event)
            out.append(raw + b"\n\n")
        data = b"".join(out)
        if data:
            self.completion.add(data)
        return data

    def _event(self, event: SseEvent) -> bytes:
        kind = event.event
        if kind in (None, "ping", "content_block_start", "content_block_delta",
                    "content_block_stop") or not event.data:
            return event.raw
        payload = _json(event.data)
        if kind == "message_start":
            message = payload.get("message") or {}
            self._usage.update({k: v for k, v in (message.get("usage") or {}).items() if v is not None})
            return with_model(event.raw, self._model)
        if kind == "message_delta":
            self._usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
            self.usage = tokens(self._usage)
            if self.usage is not None:
                self.completion.stop()
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            self.error = map_stream_error(payload)
        return event.raw


def _json(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
