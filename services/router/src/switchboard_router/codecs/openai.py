"""OpenAI's wire format, spoken by OpenAI and every OpenAI-compatible vendor in the catalog: pure
functions, no I/O. The benchmarked hot path: keep it lean.

Requests are the client's JSON with the model swapped (unknown fields kept). Answers are forwarded
as the provider's bytes; they are parsed only to find the usage, and in streams only the events that
may carry usage, an error or the end are looked at.
https://platform.openai.com/docs/api-reference/chat/create
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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

from switchboard_router.codecs.base import answer_object
from switchboard_router.codecs.sse import (
    DONE,
    SseEvent,
    UsageEvent,
    find_all,
    parse,
    spans_at,
    split_events,
)
from switchboard_router.completion import CompletionCounter
from switchboard_router.domain import Endpoint, ProviderSpec, Tokens
from switchboard_router.providers.base import Call, Reply

# Organisation and project ids in a provider's error text (OpenAI's 429s name them).
_ACCOUNT_IDS = re.compile(r"\b(?:org|proj)[-_][A-Za-z0-9]{6,}\b")

PATHS = {
    Endpoint.CHAT: "/chat/completions",
    Endpoint.COMPLETIONS: "/completions",
    Endpoint.EMBEDDINGS: "/embeddings",
    Endpoint.MODERATIONS: "/moderations",
}
# Switchboard's own request fields (memory, RAG): OpenAI rejects unknown arguments, so they stay here.
EXTENSION_FIELDS = ("session_id", "rag_collection", "rag_top_k")


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
    if api_key and not any(h.lower() in ("authorization", "api-key", "x-api-key") for h in headers):
        out["Authorization"] = f"Bearer {api_key}"
    return Wire(base_url=base_url.rstrip("/"), headers=out, stream_usage=stream_usage)


class OpenAICodec:
    """The codec (codecs.base.Codec) of OpenAI's format: the client's JSON goes out with the model
    swapped, and the provider's bytes come back as they are."""

    endpoints = frozenset(Endpoint)

    def __init__(self, w: Wire) -> None:
        self.wire = w

    def request(self, call: Call) -> tuple[str, dict[str, str], bytes]:
        return build_request(self.wire, call)

    def response(self, call: Call, body: bytes) -> Reply:
        parsed, usage = parse_response(body)
        # The provider's bytes go to the client as they are: parsed once, never re-serialised.
        return Reply(data=body, usage=usage, text=lambda: response_text(parsed), parsed=parsed)

    def relay(self, call: Call, count: Callable[[str], int]) -> SseRelay:
        return SseRelay(forward_usage=call.include_usage, count=count)

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        return map_error(status, body, retry_after)


def build_request(w: Wire, call: Call, path: str | None = None) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, JSON body) for one attempt; `path` replaces the endpoint's usual path
    (Azure's deployment paths)."""
    body = dict(call.body)
    for name in EXTENSION_FIELDS:
        body.pop(name, None)
    body["model"] = call.upstream_model
    if body.get("stream") and w.stream_usage and not call.include_usage:
        # Ask for usage so the real token counts are billed; SseRelay hides the extra chunk.
        options = body.get("stream_options")
        body["stream_options"] = {**options, "include_usage": True} if isinstance(options, dict) \
            else {"include_usage": True}
    return w.base_url + (path or PATHS[call.endpoint]), w.headers, orjson.dumps(body)


def parse_response(data: bytes) -> tuple[dict[str, Any], Tokens | None]:
    """A whole answer, parsed once: (the JSON, the usage it reports)."""
    parsed = answer_object(data, "a response that is not a JSON object")
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
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    out = usage.get("completion_tokens_details")
    reasoning = out.get("reasoning_tokens") if isinstance(out, dict) else None
    return Tokens(prompt, completion, cached if isinstance(cached, int) else 0,
                  reasoning=reasoning if isinstance(reasoning, int) else 0)


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
        # OpenAI's says "... in organization org-... on tokens per min": the operator's account
        # ids are not the caller's business.
        return RateLimited(_ACCOUNT_IDS.sub("[hidden]", message) if message else
                           "The provider is rate limiting requests; retry later.",
                           code=code, retry_after=retry_seconds(retry_after))
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


def retry_seconds(value: str | None) -> int | None:
    try:
        return max(0, math.ceil(float(value))) if value else None
    except ValueError:
        return None  # an HTTP date: rare from providers, and the client retries anyway


def stream_texts(events: bytes) -> list[str]:
    """The generated text in complete stream events (chat deltas or legacy completion choices)."""
    texts: list[str] = []
    for event in split_events(events + b"\n\n")[0]:
        if event.data and event.data != b"[DONE]":
            chunk = _json(event.data)
            if isinstance(chunk, dict):
                texts += _choice_texts(chunk.get("choices"), "delta")
    return texts


class SseRelay:
    """Follows one provider stream read by read: what to forward, the usage, the end, errors, and
    the completion so far (for token counting when no usage comes; see completion.py).

    A read is forwarded as it came: only the events that may hold the usage, an error or the end
    are found (one regex search in C) and parsed; the others are neither split nor copied. Only
    complete events are forwarded, so a usage chunk split across reads can still be held back.
    """

    def __init__(self, forward_usage: bool, count: Callable[[str], int]) -> None:
        self.usage: Tokens | None = None
        self.error: ApiError | None = None
        self.done = False
        # The usage chunk as found in the bytes last forwarded, for the cost (costs.py).
        self.usage_event: UsageEvent | None = None
        self.completion = CompletionCounter(stream_texts, count)
        self._forward_usage = forward_usage
        self._rest = b""
        self._usage_chunk: dict[str, Any] | None = None

    def feed(self, read: bytes) -> bytes:
        """The bytes to forward for this read (maybe empty)."""
        buffer = self._rest + read if self._rest else read
        if b"\r" in buffer:
            events, self._rest = split_events(buffer)
            return self._forward(events)
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self._rest = buffer
            return b""
        complete, self._rest = buffer[:cut + 2], buffer[cut + 2:]
        spans = spans_at(complete, _notable(complete))
        if spans:  # only those events are parsed; the others go out byte for byte
            complete = self._read(complete, spans)
        self.completion.add(complete)
        return complete

    def finish(self) -> bytes:
        """At the provider's clean end: a last unterminated event, and [DONE] if it never came."""
        out = b""
        if self._rest.strip():
            out = self._forward(split_events(self._rest + b"\n\n")[0])
        self._rest = b""
        return out if self.done else out + DONE

    def completion_tokens(self) -> int:
        """The provider's count once it reported usage; until then, counted from the text."""
        return self.usage.completion if self.usage is not None else self.completion.tokens()

    def _read(self, complete: bytes, spans: list[tuple[int, int]]) -> bytes:
        """`complete` without the events that are not forwarded, the notable ones read; a usage
        chunk forwarded is noted (usage_event) where it lands in the bytes returned."""
        out: list[bytes] = []
        at = 0
        left_out = 0  # bytes of the events not forwarded before this one
        found: tuple[int, int, dict[str, Any], str | None] | None = None
        for start, end in spans:
            event = parse(complete[start:end])
            if event is None:
                continue
            self._usage_chunk = None
            if not self._keep(event, notable=True):
                out.append(complete[at:start])
                left_out += end + 2 - start
                at = end + 2
            elif self._usage_chunk is not None:
                found = (start - left_out, end - left_out, self._usage_chunk, event.event)
        if out:
            out.append(complete[at:])
            complete = b"".join(out)
        if found is not None:
            self.usage_event = UsageEvent(complete, *found)
        return complete

    def _forward(self, events: list[SseEvent]) -> bytes:
        kept: list[bytes] = []
        for event in events:
            if self._keep(event):
                kept.append(event.raw)
                kept.append(b"\n\n")
        out = b"".join(kept)
        self.completion.add(out)
        return out

    def _keep(self, event: SseEvent, notable: bool = False) -> bool:
        """Reads an event for the end, an error or the usage; False for the usage-only chunk we
        asked for and the client did not. `notable`: already found to hold one of them."""
        data = event.data
        if data == b"[DONE]":
            self.done = True
        elif data and (notable or _notable(data)):
            chunk = _json(data)
            if isinstance(chunk, dict):
                if "error" in chunk and not chunk.get("choices"):
                    self.error = map_stream_error(chunk)
                usage = tokens(chunk.get("usage"))
                if usage is not None:
                    self.usage = usage
                    self._usage_chunk = chunk
                    self.completion.stop()
                    if not self._forward_usage and not chunk.get("choices"):
                        return False
        return True


# A usage that is not null (most chunks of a stream that asks for usage carry "usage":null).
USAGE = re.compile(rb'"usage"[ \t]*:(?![ \t]*null)')


def _notable(data: bytes) -> list[int]:
    """Where these bytes may hold the end, an error, or a usage, sorted. Three searches with a
    literal prefix each: one regex alternating them scans several times slower."""
    places = [m.start() for m in USAGE.finditer(data)]
    places += find_all(data, b"[DONE]")
    places += find_all(data, b'{"error"')
    places.sort()
    return places


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def codec(spec: ProviderSpec) -> OpenAICodec:
    headers = dict(spec.headers)
    if spec.auth_header and spec.auth_header != "authorization" and spec.api_key and \
            spec.credential != "oauth":  # an OAuth access token is always a Bearer token
        headers[spec.auth_header] = spec.api_key
    return OpenAICodec(wire(spec.base_url, spec.api_key, headers, spec.stream_usage))
