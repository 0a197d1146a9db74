"""Google's Gemini API (generateContent) as OpenAI's chat completions: pure functions, no I/O.

`POST {base}/{v1beta|v1}/models/{model}:generateContent`, streams `:streamGenerateContent?alt=sse`
(one GenerateContentResponse per `data:` frame, no `[DONE]`, usage complete on the last frame),
the key in `x-goog-api-key`. Vertex AI speaks the same body on its own paths (codecs/vertex.py).
https://ai.google.dev/api/generate-content

Requests are translated in codecs/gemini_request.py (what Gemini cannot express is refused with a
400 naming it); answers, errors and streams here. Pitfalls peers hit (research/providers-wire.md
§2.5) and how they are met:
- Gemini says STOP when it called functions: reported as `tool_calls`.
- Gemini often gives no call id: each call gets a fresh unique one (never restarting per turn),
  and tool results go back by the function name found from that id.
- A call's `thoughtSignature` must come back verbatim on the next turn: it rides on the OpenAI tool
  call as `extra_content.google.thought_signature` (as Google's own OpenAI layer carries it).
- A blocked prompt is HTTP 200 with no candidates: `content_filter`, as are SAFETY and the like.
- The last stream frame may carry only finishReason and usage: read whatever frame has them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
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

from switchboard_router.codecs import gemini_embeddings
from switchboard_router.codecs.base import HttpRequest, ProviderOverloaded, answer_object
from switchboard_router.codecs.gemini_request import (
    CALL_ID_PREFIX,
    DEFAULT_VERSION,
    VERSIONS,
    translate_request,
)
from switchboard_router.codecs.openai import retry_seconds, stream_texts
from switchboard_router.codecs.sse import DONE, SseDecoder, SseEvent
from switchboard_router.completion import CompletionCounter
from switchboard_router.domain import Endpoint, ProviderSpec, Tokens
from switchboard_router.providers.base import Call, Reply

FINISH_REASONS = {
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
    "RECITATION": "content_filter", "LANGUAGE": "content_filter", "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter", "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter", "OTHER": "stop", "IMAGE_OTHER": "stop",
    "NO_IMAGE": "stop", "FINISH_REASON_UNSPECIFIED": "stop",
}
# The model failed at calling a tool: an error, never a clean `stop` with nothing in it.
FAILED_CALLS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})



class GeminiCodec:
    endpoints = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS})

    def __init__(self, base_url: str, headers: dict[str, str], version: str = DEFAULT_VERSION) -> None:
        self.prefix = f"{base_url.rstrip('/')}/{version}/models/"
        self.headers = headers  # Sensitive: holds the key
        self.version = version

    def model_url(self, call: Call) -> str:
        method = ":streamGenerateContent?alt=sse" if call.body.get("stream") else ":generateContent"
        return self.prefix + call.upstream_model + method

    def request(self, call: Call) -> HttpRequest:
        if call.endpoint is Endpoint.EMBEDDINGS:
            method, embed = gemini_embeddings.gemini_request(call.upstream_model, call.body)
            return HttpRequest(f"{self.prefix}{call.upstream_model}:{method}", self.headers,
                               orjson.dumps(embed))
        return HttpRequest(self.model_url(call), self.headers,
                           orjson.dumps(translate_request(call, self.version)))

    def response(self, call: Call, body: bytes) -> Reply:
        if call.endpoint is Endpoint.EMBEDDINGS:
            return embeddings_reply(*gemini_embeddings.gemini_answer(call.upstream_model, call.body, body))
        parsed = _object(body)
        answer = to_chat_completion(parsed, call.upstream_model)
        text = answer["choices"][0]["message"].get("content") or ""
        return Reply(data=orjson.dumps(answer), usage=tokens(parsed.get("usageMetadata")),
                     text=lambda: text, parsed=answer)

    def relay(self, call: Call, count: Callable[[str], int]) -> GeminiRelay:
        return GeminiRelay(call.upstream_model, forward_usage=call.include_usage, count=count)

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        return map_error(status, body, retry_after)


def embeddings_reply(listing: dict[str, Any], usage: Tokens | None) -> Reply:
    return Reply(data=orjson.dumps(listing), usage=usage, text=lambda: "", parsed=listing)


def codec(spec: ProviderSpec) -> GeminiCodec:
    version = spec.api_version or DEFAULT_VERSION
    if version not in VERSIONS:
        raise ValueError(f"provider {spec.name!r}: Gemini api_version must be one of {VERSIONS}")
    headers = {"Content-Type": "application/json", "User-Agent": "switchboard-router"}
    headers.update(spec.headers)
    if spec.credential == "oauth":  # https://ai.google.dev/gemini-api/docs/oauth
        headers["Authorization"] = f"Bearer {spec.api_key}"
    elif spec.api_key:
        headers["x-goog-api-key"] = spec.api_key
    return GeminiCodec(spec.base_url, headers, version)


# --- answers --------------------------------------------------------------------------------

def tokens(usage: Any) -> Tokens | None:
    """Gemini's promptTokenCount includes the cached part; its candidatesTokenCount leaves out
    the thoughts, which OpenAI's completion_tokens include (as reasoning tokens)."""
    if not isinstance(usage, dict) or not isinstance(usage.get("promptTokenCount"), int):
        return None
    thoughts = usage.get("thoughtsTokenCount") or 0
    prompt = usage["promptTokenCount"] + (usage.get("toolUsePromptTokenCount") or 0)
    return Tokens(prompt, (usage.get("candidatesTokenCount") or 0) + thoughts,
                  cached=usage.get("cachedContentTokenCount") or 0, reasoning=thoughts)


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    t = tokens(usage) or Tokens(0, 0)
    return {"prompt_tokens": t.prompt, "completion_tokens": t.completion, "total_tokens": t.total,
            "prompt_tokens_details": {"cached_tokens": t.cached},
            "completion_tokens_details": {"reasoning_tokens": t.reasoning}}


def new_call_id() -> str:
    return CALL_ID_PREFIX + secrets.token_hex(12)


def tool_call(part: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    """A functionCall part as OpenAI's tool call, its thoughtSignature carried opaquely."""
    fc = part["functionCall"]
    out: dict[str, Any] = {"id": call_id or fc.get("id") or new_call_id(), "type": "function",
                           "function": {"name": fc.get("name"),
                                        "arguments": orjson.dumps(fc.get("args") or {}).decode()}}
    if part.get("thoughtSignature"):
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def finish_reason(reason: str | None, called: bool) -> str:
    if reason in FAILED_CALLS:
        raise UpstreamError(f"The model failed to call a tool properly (Gemini {reason}).",
                            code="provider_tool_call_failed")
    if called and reason in (None, "STOP"):
        return "tool_calls"  # Gemini says STOP after calling functions
    return FINISH_REASONS.get(reason or "", "stop")


def to_chat_completion(answer: dict[str, Any], model: str) -> dict[str, Any]:
    candidates = answer.get("candidates") or []
    candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if "functionCall" in part:
            calls.append(tool_call(part))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    if not candidates and (answer.get("promptFeedback") or {}).get("blockReason"):
        reason = "content_filter"  # the prompt itself was blocked
    else:
        reason = finish_reason(candidate.get("finishReason"), bool(calls))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls
                               else None, "refusal": None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": _answer_id(answer), "object": "chat.completion", "created": int(time.time()),
        "model": answer.get("modelVersion") or model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
    }
    if isinstance(answer.get("usageMetadata"), dict):
        out["usage"] = openai_usage(answer["usageMetadata"])
    return out


def _answer_id(answer: dict[str, Any]) -> str:
    rid = answer.get("responseId")
    return rid if isinstance(rid, str) and rid else "chatcmpl-" + secrets.token_hex(12)


def _object(body: bytes) -> dict[str, Any]:
    return answer_object(body, "a response that is not a Gemini answer",
                         lambda a: "candidates" in a or "promptFeedback" in a)


# --- errors ---------------------------------------------------------------------------------

def map_error(status: int, data: bytes, retry_after: str | None = None) -> ApiError:
    """Google's `{"error":{code,message,status,details}}` (Vertex may wrap it in an array) as our
    error, by its status name first (https://ai.google.dev/gemini-api/docs/troubleshooting)."""
    error = _error_object(data)
    kind = error.get("status") if isinstance(error.get("status"), str) else ""
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    reasons = {d.get("reason") for d in error.get("details") or () if isinstance(d, dict)}
    if kind in ("UNAUTHENTICATED", "PERMISSION_DENIED") or status in (401, 403) or \
            reasons & {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED"}:
        return UpstreamError("The provider rejected the gateway's credentials for this model; "
                             "the gateway's operator must check the provider key.",
                             code="provider_auth_error")
    if kind == "RESOURCE_EXHAUSTED" or status == 429:
        seconds = retry_seconds(retry_after)
        if seconds is None:
            seconds = _retry_delay(error)
        return RateLimited(message or "The provider is rate limiting requests; retry later.",
                           retry_after=seconds)
    if kind == "NOT_FOUND" or status == 404:
        return NotFound(message or "The provider does not know this model.", code="model_not_found")
    if status == 413:
        return PayloadTooLarge(message or "The request is too large for the provider.")
    if kind == "DEADLINE_EXCEEDED" or status in (408, 504):
        return UpstreamTimeout("The provider timed out.")
    if kind == "UNAVAILABLE" or status == 503:
        return ProviderOverloaded(message or "The provider is overloaded; retry later.",
                                  retry_after=retry_seconds(retry_after))
    if status >= 500:
        detail = f": {message}" if message else ""
        return UpstreamError(f"The provider failed with HTTP {status}{detail}")
    return InvalidRequest(message or f"The provider rejected the request (HTTP {status}).",
                          code="provider_invalid_request")


def _retry_delay(error: dict[str, Any]) -> int | None:
    """google.rpc.RetryInfo's retryDelay ("7s", "0.5s") in whole seconds, rounded up."""
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                return retry_seconds(delay[:-1])
    return None


def _error_object(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(parsed, list) and parsed:  # Vertex's array form
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


# --- streams --------------------------------------------------------------------------------

class GeminiRelay:
    """One Gemini stream as OpenAI chunks. Holds only this stream's state: the answer's id, how
    many tool calls it made (their OpenAI indexes), the finish reason and the latest usage."""

    def __init__(self, model: str, forward_usage: bool, count: Callable[[str], int]) -> None:
        self.usage: Tokens | None = None
        self.error: ApiError | None = None
        self.completion = CompletionCounter(stream_texts, count)
        self._model = model
        self._forward_usage = forward_usage
        self._decoder = SseDecoder()
        self._head = b""
        self._calls = 0
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def feed(self, read: bytes) -> bytes:
        return self._translate(self._decoder.feed(read))

    def finish(self) -> bytes:
        out = self._translate(self._decoder.close())
        if self.error is not None:
            return out
        if self._finish is None:
            # The provider closed the stream before a finishReason: the answer is cut, say so.
            self.error = UpstreamError("The provider ended the stream before the answer was complete.")
            return out + _error_event(self.error)
        tail = b""
        if self._forward_usage and self._usage is not None:
            tail = b"data: " + self._head + b'[],"usage":' + orjson.dumps(openai_usage(self._usage)) + b"}\n\n"
        return out + tail + DONE

    def completion_tokens(self) -> int:
        return self.usage.completion if self.usage is not None else self.completion.tokens()

    def _translate(self, events: list[SseEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if event.data is None or self.error is not None:
                continue
            try:
                frame = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                frame = None
            if isinstance(frame, list) and frame:  # an error frame in Vertex's array form
                frame = frame[0]
            if not isinstance(frame, dict):
                self.error = UpstreamError("The provider sent a stream frame that is not JSON.",
                                           code="invalid_upstream_response")
                out.append(_error_event(self.error))
                continue
            out.append(self._frame(frame))
        data = b"".join(out)
        if data:
            self.completion.add(data)
        return data

    def _frame(self, frame: dict[str, Any]) -> bytes:
        if isinstance(frame.get("error"), dict):
            code = frame["error"].get("code")
            self.error = map_error(code if isinstance(code, int) else 500, orjson.dumps(frame))
            return _error_event(self.error)
        out = b""
        if not self._head:
            self._head = (b'{"id":' + orjson.dumps(_answer_id(frame)) +
                          b',"object":"chat.completion.chunk","created":' + str(int(time.time())).encode() +
                          b',"model":' + orjson.dumps(frame.get("modelVersion") or self._model) +
                          b',"choices":')
            out = self._chunk({"role": "assistant", "content": ""})
        if isinstance(frame.get("usageMetadata"), dict):
            self._usage = frame["usageMetadata"]  # every frame may have one; the last is complete
        candidates = frame.get("candidates") or []
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                call = tool_call(part)
                call["index"] = self._calls
                self._calls += 1
                out += self._chunk({"tool_calls": [call]})
            elif isinstance(part.get("text"), str) and part["text"]:
                key = "reasoning_content" if part.get("thought") else "content"
                out += self._chunk({key: part["text"]})
        reason = candidate.get("finishReason")
        blocked = not candidates and (frame.get("promptFeedback") or {}).get("blockReason")
        if (reason or blocked) and self._finish is None:
            try:
                self._finish = "content_filter" if blocked else finish_reason(reason, self._calls > 0)
            except UpstreamError as exc:
                self.error = exc
                return out + _error_event(exc)
            out += self._chunk({}, self._finish)
        if self._finish is not None and self._usage is not None:
            # Only the counts at the end are the answer's: until then the text is counted.
            self.usage = tokens(self._usage)
            if self.usage is not None:
                self.completion.stop()
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + self._head + b"[" + orjson.dumps(choice) + b"]}\n\n"


def _error_event(error: ApiError) -> bytes:
    return b"data: " + orjson.dumps(error.to_openai()) + b"\n\n"
