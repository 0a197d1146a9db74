"""The fake Anthropic API's request checks: the `anthropic` SDK's own TypedDicts with extra
fields forbidden (generated from Anthropic's OpenAPI spec), plus the rules the types do not
encode (user first, roles alternating, no empty text, each tool_use answered first in the next
turn, thinking budget within max_tokens, thinking blocks sent back with the signature the fake
gave them). A request that breaks one gets Anthropic's 400 `invalid_request_error`."""

from __future__ import annotations

from typing import Any

import orjson
from anthropic.types.message_count_tokens_params import MessageCountTokensParams
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from pydantic import ConfigDict, TypeAdapter, ValidationError

SIGNATURE = "c2lnbmF0dXJl"  # what the fake signs its thinking with, and checks it comes back with
# status -> Anthropic's error type (https://docs.anthropic.com/en/api/errors)
ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
          500: "api_error", 529: "overloaded_error"}
_STRICT = ConfigDict(extra="forbid")
_NON_STREAMING = TypeAdapter(list[MessageCreateParamsNonStreaming], config=_STRICT)
_STREAMING = TypeAdapter(list[MessageCreateParamsStreaming], config=_STRICT)
_COUNTING = TypeAdapter(list[MessageCountTokensParams], config=_STRICT)


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_body(status: int, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": ERRORS.get(status, "api_error"),
                                                    "message": message},
                         "request_id": "req_fake"})


# --- validation -----------------------------------------------------------------------------

def validate(body: Any, *, counting: bool = False) -> None:
    """Anthropic's types (extra fields forbidden), then the semantic rules; raises Refusal(400).
    `counting`: a /v1/messages/count_tokens body (MessageCountTokensParams)."""
    if not isinstance(body, dict):
        raise Refusal(400, "The request body is not valid JSON.")
    adapter = _COUNTING if counting else _STREAMING if body.get("stream") else _NON_STREAMING
    try:
        _drain(adapter.validate_python([body]))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise Refusal(400, f"{where}: {first['msg']}") from None
    _check_semantics(body)


def _drain(value: Any) -> Any:
    """Walk what pydantic returned: `Iterable[...]` fields validate lazily, as they are read."""
    if isinstance(value, dict):
        return {k: _drain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ValidatorIterator":
        return [_drain(v) for v in value]
    return value


def _check_semantics(body: dict[str, Any]) -> None:
    messages = body["messages"]
    if not messages or messages[0]["role"] != "user":
        raise Refusal(400, "messages: the first message must use the \"user\" role")
    pending: set[str] = set()
    for i, m in enumerate(messages):
        if i and m["role"] == messages[i - 1]["role"]:
            raise Refusal(400, f"messages.{i}: roles must alternate between \"user\" and \"assistant\"")
        blocks = [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
        if not blocks:
            raise Refusal(400, f"messages.{i}: all messages must have non-empty content")
        for block in blocks:
            if block["type"] == "text" and not block["text"].strip():
                raise Refusal(400, f"messages.{i}: text content blocks must contain non-whitespace text")
            if block["type"] == "thinking" and block["signature"] != SIGNATURE:
                raise Refusal(400, f"messages.{i}: Invalid `signature` in `thinking` block")
        if pending:
            results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
            opening = [b["type"] for b in blocks[:len(results)]]
            if set(results) != pending or len(results) != len(set(results)) or \
                    any(t != "tool_result" for t in opening):
                raise Refusal(400, f"messages.{i}: `tool_use` ids were found without `tool_result` "
                                   "blocks immediately after: each tool_use needs one tool_result, "
                                   "first in the next user message")
            pending = set()
        if m["role"] == "assistant":
            pending = {b["id"] for b in blocks if b["type"] == "tool_use"}
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled" and "max_tokens" in body:
        budget = thinking["budget_tokens"]
        if budget < 1024 or budget >= body["max_tokens"]:
            raise Refusal(400, "thinking.budget_tokens: must be >= 1024 and less than max_tokens")
