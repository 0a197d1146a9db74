"""`/v1/messages` passed through to a deployment that speaks Anthropic's format: pure functions
of JSON and bytes, no I/O.

The client's body goes to the provider as it came (only the model name is the provider's), so
cache_control, thinking and its signed blocks, metadata and top_k reach it; the gateway itself
(limits, budgets, guardrails, the usage estimate) reads a Chat Completions view of the same body,
made by messages.to_chat, which also refuses what the gateway does not know. The answer comes
back as the provider sent it, model name aside; an error the gateway raises after the stream
began becomes Anthropic's `event: error`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.sse import encode, split_events
from switchboard_router.inbound import messages

# The anthropic-beta values passed through: documented betas whose features need nothing the
# gateway refuses (https://docs.anthropic.com/en/api/beta-headers).
BETAS = frozenset({
    "prompt-caching-2024-07-31", "extended-cache-ttl-2025-04-11", "interleaved-thinking-2025-05-14",
    "dev-full-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14",
    "token-efficient-tools-2025-02-19", "output-128k-2025-02-19", "output-300k-2026-03-24",
    "context-1m-2025-08-07", "model-context-window-exceeded-2025-08-26",
    "token-counting-2024-11-01", "thinking-token-count-2026-05-13",
})
# Assistant blocks only a native deployment can take back: the model's own signed thinking.
_THINKING_KEYS = {"thinking": {"type", "thinking", "signature"}, "redacted_thinking": {"type", "data"}}


class Native(NamedTuple):
    chat: dict[str, Any]  # the Chat Completions view: validated, and what the gateway reads
    body: dict[str, Any]  # what an Anthropic-format deployment is sent (its model set per call)
    only: str  # the first field only such a deployment can take ("" when none)


def read(body: dict[str, Any], *, counting: bool = False) -> Native:
    """The body validated (unknown fields refused, as on the translated path) and its two forms."""
    only = ""
    view = dict(body)
    for name in ("thinking",) if counting else ("thinking", "top_k"):
        value = view.pop(name, None)
        if name == "thinking" and value is not None and not _thinking(value):
            continue
        if value is not None and not only:
            only = name
    if isinstance(view.get("messages"), list):
        native_messages, view_messages = [], []
        for i, message in enumerate(view["messages"]):
            native_message, view_message, found = _message(message, f"messages.{i}")
            native_messages.append(native_message)
            view_messages.append(view_message)
            only = only or found
        body = {**body, "messages": native_messages}
        view["messages"] = view_messages
    return Native(messages.to_chat(view, counting=counting), body, only)


def _thinking(value: Any) -> bool:
    """Whether a `thinking` value is an enabled one (checked here, since the view drops it)."""
    if not isinstance(value, dict) or value.get("type") not in ("enabled", "disabled", "adaptive"):
        raise InvalidRequest("thinking: type must be enabled, adaptive or disabled", param="thinking")
    if value["type"] == "enabled" and (not isinstance(value.get("budget_tokens"), int)
                                       or isinstance(value["budget_tokens"], bool)):
        raise InvalidRequest("thinking.budget_tokens: Field required (an integer)",
                             param="thinking.budget_tokens")
    return value["type"] != "disabled"


def _message(message: Any, at: str) -> tuple[Any, Any, str]:
    """(the message to send, its view for the gateway, the first native-only block's param)."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message, message, ""
    sent, seen, only = [], [], ""
    for j, block in enumerate(message["content"]):
        where = f"{at}.content.{j}"
        if isinstance(block, dict):
            # The SDK dumps its own blocks with unset fields as null; Anthropic's types have none.
            block = {k: v for k, v in block.items() if v is not None}
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in _THINKING_KEYS:
            if message.get("role") != "assistant" or set(block) != _THINKING_KEYS[kind]:
                raise InvalidRequest(f"{where}: a {kind} block is the assistant's, with "
                                     f"{', '.join(sorted(_THINKING_KEYS[kind] - {'type'}))}",
                                     param=where)
            sent.append(block)
            only = only or where
            continue
        if kind == "tool_result" and isinstance(block.get("content"), list):
            parts = [p for p in block["content"] if not (isinstance(p, dict) and p.get("type") == "image")]
            if len(parts) != len(block["content"]):
                only = only or f"{where}.content"
                sent.append(block)
                seen.append({**block, "content": parts})
                continue
        sent.append(block)
        seen.append(block)
    return {**message, "content": sent}, {**message, "content": seen}, only


def betas(header: tuple[str, ...]) -> tuple[str, ...]:
    """The anthropic-beta values passed through: the documented ones in BETAS. Others (a client's
    own, such as claude-code-*, or betas for features this gateway refuses) stay here, so that a
    client sending them still works through any deployment (README: /v1/messages)."""
    return tuple(b for b in header if b in BETAS)


def split_betas(values: list[str]) -> tuple[str, ...]:
    """anthropic-beta as sent: comma-separated, possibly in several headers."""
    return tuple(b.strip() for v in values for b in v.split(",") if b.strip())


class Errors:
    """A native stream as the provider sent it, except for an error the gateway raised after the
    200 (a guardrail's block, the deadline), which the gateway writes as OpenAI's `data:` event:
    that becomes Anthropic's `event: error`, which the SDK raises. Every piece the gateway yields
    holds whole events (the relay forwards only those), so a piece is looked at alone."""

    @staticmethod
    def feed(data: bytes) -> bytes:
        if b'data: {"error"' not in data:
            return data
        out = []
        for event in split_events(data)[0]:
            error = _openai_error(event.data) if event.event is None else None
            if error is None:
                out.append(event.raw + b"\n\n")
                continue
            out.append(encode(orjson.dumps({"type": "error", "error": messages.stream_error(error)}),
                              "error"))
        return b"".join(out)


def _openai_error(data: bytes | None) -> dict[str, Any] | None:
    if not data or not data.startswith(b'{"error"'):
        return None
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None
