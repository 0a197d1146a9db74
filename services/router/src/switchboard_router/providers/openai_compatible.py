"""OpenAI's wire format, spoken by OpenAI and every vendor in the catalog: pure functions, no I/O.

Requests are the client's JSON with the model swapped (unknown fields kept). Answers are forwarded
as the provider's bytes; they are parsed only to find the usage, and in streams only the events that
may carry usage, an error or the end are looked at.
https://platform.openai.com/docs/api-reference/chat/create
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
from switchboard_common.errors import (
    ApiError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

from switchboard_router.domain import Endpoint, Tokens
from switchboard_router.providers.base import Call

PATHS = {
    Endpoint.CHAT: "/chat/completions",
    Endpoint.COMPLETIONS: "/completions",
    Endpoint.EMBEDDINGS: "/embeddings",
    Endpoint.MODERATIONS: "/moderations",
}
# Switchboard's own request fields (memory, RAG): OpenAI rejects unknown arguments, so they stay here.
EXTENSION_FIELDS = ("session_id", "rag_collection", "rag_top_k")
DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class Wire:
    """How to reach one provider: built once from its config."""

    base_url: str
    headers: dict[str, str]  # Sensitive: holds the provider key
    stream_usage: bool  # accepts stream_options.include_usage


def wire(base_url: str, api_key: str, headers: dict[str, str], stream_usage: bool) -> Wire:
    out = {"Content-Type": "application/json", "User-Agent": "switchboard-router"}
    out.update(headers)
    # Vendors needing another header (Azure's `api-key`) set it in `headers` instead.
    if api_key and not any(h.lower() in ("authorization", "api-key") for h in headers):
        out["Authorization"] = f"Bearer {api_key}"
    return Wire(base_url=base_url.rstrip("/"), headers=out, stream_usage=stream_usage)


def build_request(w: Wire, call: Call) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, JSON body) for one attempt."""
    body = dict(call.body)
    for name in EXTENSION_FIELDS:
        body.pop(name, None)
    body["model"] = call.upstream_model
    if body.get("stream") and w.stream_usage and not call.include_usage:
        # Ask for usage so the real token counts are billed; SseRelay hides the extra chunk.
        options = body.get("stream_options")
        body["stream_options"] = {**options, "include_usage": True} if isinstance(options, dict) \
            else {"include_usage": True}
    return w.base_url + PATHS[call.endpoint], w.headers, orjson.dumps(body)


def parse_response(data: bytes) -> tuple[dict[str, Any], Tokens | None]:
    """A whole answer, parsed once: (the JSON, the usage it reports)."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamError("The provider returned a response that is not a JSON object.",
                            code="invalid_upstream_response")
    return parsed, tokens(parsed.get("usage"))


def tokens(usage: Any) -> Tokens | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    if not isinstance(prompt, int):
        return None
    completion = usage.get("completion_tokens")
    if not isinstance(completion, int):  # embeddings report prompt and total only
        total = usage.get("total_tokens")
        completion = total - prompt if isinstance(total, int) and total >= prompt else 0
    return Tokens(prompt, completion)


def response_text(parsed: dict[str, Any]) -> str:
    """The generated text of a whole answer (chat or legacy completion)."""
    return "".join(_choice_texts(parsed.get("choices"), "message"))


def _choice_texts(choices: Any, part: str) -> list[str]:
    out: list[str] = []
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            out.append(choice["text"])
        message = choice.get(part)
        if isinstance(message, dict):
            if isinstance(message.get("content"), str):
                out.append(message["content"])
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    out.extend(v for v in (function.get("name"), function.get("arguments"))
                               if isinstance(v, str))
    return out


def map_error(status: int, data: bytes, retry_after: str | None = None) -> ApiError:
    """A provider's HTTP error as our error. The provider's message is kept for the client's own
    mistakes; for the gateway's (credentials) it is replaced, as it may quote the key."""
    error = _error_object(data)
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    param = error.get("param") if isinstance(error.get("param"), str) else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    if status in (401, 403):
        return UpstreamError("The provider rejected the gateway's credentials for this model; "
                             "the gateway's operator must check the provider key.",
                             code="provider_auth_error")
    if status == 404:
        return NotFound(message or "The provider does not know this model or route.",
                        param=param, code=code or "model_not_found")
    if status == 408:
        return UpstreamTimeout("The provider timed out.")
    if status == 413:
        return PayloadTooLarge(message or "The request is too large for the provider.", param=param)
    if status == 429:
        return RateLimited(message or "The provider is rate limiting requests; retry later.",
                           code=code, retry_after=_seconds(retry_after))
    if status >= 500:
        detail = f": {message}" if message else ""
        return UpstreamError(f"The provider failed with HTTP {status}{detail}", code="upstream_error")
    return InvalidRequest(message or f"The provider rejected the request (HTTP {status}).",
                          param=param, code=code)


def map_stream_error(payload: Any) -> ApiError:
    """An `{"error": ...}` event the provider sent inside a stream."""
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return UpstreamError(message if isinstance(message, str) and message
                         else "The provider reported an error during the stream.")


def _error_object(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return error
    if isinstance(error, str):  # some vendors send {"error": "text"}
        return {"message": error}
    return {}


def _seconds(value: str | None) -> int | None:
    try:
        return max(0, math.ceil(float(value))) if value else None
    except ValueError:
        return None  # an HTTP date: rare from providers, and the client retries anyway


@dataclass(frozen=True, slots=True)
class SseEvent:
    raw: bytes  # the event's lines, without the blank line that ends it
    data: bytes | None  # the joined `data:` lines; None for comment-only events


def parse_sse_events(buffer: bytes) -> tuple[list[SseEvent], bytes]:
    """Complete events in `buffer` and the incomplete rest, to prepend to the next read.
    Lines may end in \\n, \\r\\n or \\r (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""
    tail = b""
    if b"\r" in buffer:
        if buffer.endswith(b"\r"):  # its \n may come in the next read
            buffer, tail = buffer[:-1], b"\r"
        buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    cut = buffer.rfind(b"\n\n")
    if cut < 0:
        return [], buffer + tail
    events = [_event(block) for block in buffer[:cut].split(b"\n\n")]
    return [e for e in events if e is not None], buffer[cut + 2:] + tail


def _event(block: bytes) -> SseEvent | None:
    block = block.strip(b"\n")
    if not block:
        return None
    data = [line[6:] if line.startswith(b"data: ") else line[5:]
            for line in block.split(b"\n") if line.startswith(b"data:")]
    return SseEvent(raw=block, data=b"\n".join(data) if data else None)


class SseRelay:
    """Follows one provider stream read by read: what to forward, the usage, the end, errors.

    A read holding only ordinary chunks is forwarded as it came, unparsed. Only complete events
    are forwarded, so a usage chunk split across reads can still be held back.
    """

    def __init__(self, forward_usage: bool) -> None:
        self.usage: Tokens | None = None
        self.error: ApiError | None = None
        self.done = False
        self._forward_usage = forward_usage
        self._rest = b""
        self._reads: list[bytes] | None = []  # kept to count tokens if no usage ever comes

    def feed(self, read: bytes) -> bytes:
        """The bytes to forward for this read (maybe empty)."""
        if self._reads is not None:
            self._reads.append(read)
        buffer = self._rest + read if self._rest else read
        if b"\r" not in buffer:
            cut = buffer.rfind(b"\n\n")
            if cut < 0:
                self._rest = buffer
                return b""
            complete, self._rest = buffer[:cut + 2], buffer[cut + 2:]
            if not _notable(complete):
                return complete
        events, self._rest = parse_sse_events(buffer)
        return self._forward(events)

    def finish(self) -> bytes:
        """At the provider's clean end: a last unterminated event, and [DONE] if it never came."""
        out = b""
        if self._rest.strip():
            events, _ = parse_sse_events(self._rest + b"\n\n")
            out = self._forward(events)
        self._rest = b""
        return out if self.done else out + DONE

    def completion_text(self) -> str:
        if not self._reads:
            return ""
        events, _ = parse_sse_events(b"".join(self._reads) + b"\n\n")
        texts: list[str] = []
        for event in events:
            if event.data and event.data != b"[DONE]":
                try:
                    chunk = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(chunk, dict):
                    texts.extend(_choice_texts(chunk.get("choices"), "delta"))
        return "".join(texts)

    def _forward(self, events: list[SseEvent]) -> bytes:
        kept: list[bytes] = []
        for event in events:
            data = event.data
            if data == b"[DONE]":
                self.done = True
            elif data and _notable(data):
                chunk = _json(data)
                if isinstance(chunk, dict):
                    if "error" in chunk and not chunk.get("choices"):
                        self.error = map_stream_error(chunk)
                    usage = tokens(chunk.get("usage"))
                    if usage is not None:
                        self.usage = usage
                        self._reads = None
                        if not self._forward_usage and not chunk.get("choices"):
                            continue  # the usage-only chunk we asked for; the client did not
            kept.append(event.raw)
            kept.append(b"\n\n")
        return b"".join(kept)


def _notable(data: bytes) -> bool:
    """Whether these bytes may hold the end, an error, or a usage that is not null."""
    return (b"[DONE]" in data or b'{"error"' in data
            or data.count(b'"usage":') != data.count(b'"usage":null'))


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
