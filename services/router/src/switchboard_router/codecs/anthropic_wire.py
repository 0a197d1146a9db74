"""Anthropic's answers and errors as ours: pure functions of JSON, no I/O. A whole message as
OpenAI's chat.completion, its usage as our Tokens (and OpenAI's usage), its error bodies (HTTP or
`event: error`) as our ApiErrors. https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

import time
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

from switchboard_router.codecs.base import ProviderOverloaded, answer_object
from switchboard_router.codecs.openai import retry_seconds
from switchboard_router.domain import Tokens

FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}


# --- answers --------------------------------------------------------------------------------

def tokens(usage: Any) -> Tokens | None:
    """Anthropic's input counts are disjoint (uncached, cache read, cache written): their sum is
    OpenAI's prompt_tokens, each counted once."""
    if not isinstance(usage, dict) or not isinstance(usage.get("output_tokens"), int):
        return None
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    return Tokens(_prompt_tokens(usage), usage["output_tokens"],
                  cached=usage.get("cache_read_input_tokens") or 0,
                  cache_write=usage.get("cache_creation_input_tokens") or 0,
                  reasoning=thinking if isinstance(thinking, int) else 0)


def _prompt_tokens(usage: dict[str, Any]) -> int:
    return sum(usage.get(k) or 0 for k in (
        "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = _prompt_tokens(usage), usage.get("output_tokens") or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.get("cache_read_input_tokens") or 0,
                                  "cache_creation_tokens": usage.get("cache_creation_input_tokens") or 0},
    }
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    if isinstance(thinking, int):
        out["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return out


def to_chat_completion(message: dict[str, Any]) -> dict[str, Any]:
    texts: list[str] = []
    thinking: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
        elif kind == "tool_use":
            tool_calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls
                             else None, "refusal": None}
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    if tool_calls:
        reply["tool_calls"] = tool_calls
    answer: dict[str, Any] = {
        "id": message.get("id"), "object": "chat.completion", "created": int(time.time()),
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop")}],
    }
    if isinstance(message.get("usage"), dict):
        answer["usage"] = openai_usage(message["usage"])
    return answer


def message_object(body: bytes) -> dict[str, Any]:
    return answer_object(body, "a response that is not an Anthropic message",
                         lambda m: m.get("type") == "message")


# --- errors ---------------------------------------------------------------------------------

def map_error(status: int, data: bytes, retry_after: str | None = None) -> ApiError:
    """Anthropic's `{"type":"error","error":{"type","message"}}` as our error, by its type first
    (https://docs.anthropic.com/en/api/errors), else by status."""
    error = _error_object(data)
    kind = error.get("type") if isinstance(error.get("type"), str) else ""
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    seconds = retry_seconds(retry_after)
    if kind in ("authentication_error", "permission_error") or status in (401, 403):
        return UpstreamError("The provider rejected the gateway's credentials for this model; "
                             "the gateway's operator must check the provider key.",
                             code="provider_auth_error")
    if kind == "billing_error" or status == 402:
        return UpstreamError("The provider refused the gateway's account (billing); the gateway's "
                             "operator must check it.", code="provider_billing_error")
    if kind == "overloaded_error" or status == 529:
        return ProviderOverloaded(message or "The provider is overloaded; retry later.",
                                  retry_after=seconds)
    if kind == "rate_limit_error" or status == 429:
        return RateLimited(message or "The provider is rate limiting requests; retry later.",
                           retry_after=seconds)
    if kind == "not_found_error" or status == 404:
        return NotFound(message or "The provider does not know this model.", code="model_not_found")
    if kind == "request_too_large" or status == 413:
        return PayloadTooLarge(message or "The request is too large for the provider.")
    if kind == "timeout_error" or status in (408, 504):
        return UpstreamTimeout("The provider timed out.")
    if status >= 500 or kind == "api_error":
        detail = f": {message}" if message else ""
        return UpstreamError(f"The provider failed with HTTP {status}{detail}")
    return InvalidRequest(message or f"The provider rejected the request (HTTP {status}).",
                          code="provider_invalid_request")


def map_stream_error(payload: Any) -> ApiError:
    """An `event: error` inside a stream that began with HTTP 200."""
    error = payload.get("error") if isinstance(payload, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    message = message if isinstance(message, str) and message else \
        "The provider reported an error during the stream."
    if kind == "overloaded_error":
        return ProviderOverloaded(message)
    if kind == "rate_limit_error":
        return RateLimited(message)
    return UpstreamError(message)


def _error_object(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}
