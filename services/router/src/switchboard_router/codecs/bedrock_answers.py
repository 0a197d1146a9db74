"""Bedrock Converse's answers as OpenAI's: the whole `chat.completion`, and the pieces its stream
shares (usage, finish reasons, ids). https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from switchboard_router.codecs.base import answer_object
from switchboard_router.domain import Tokens

FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
    "model_context_window_exceeded": "length",
    # malformed_model_output / malformed_tool_use: the model's answer ended badly; OpenAI has no
    # word for it, and "stop" is what the answer's shape says.
}


# --- answers --------------------------------------------------------------------------------

def tokens(usage: Any) -> Tokens | None:
    """Converse's inputTokens leave out the cache's reads and writes: prompt_tokens is the sum of
    the three, each counted once."""
    if not isinstance(usage, dict) or not isinstance(usage.get("outputTokens"), int):
        return None
    return Tokens(_prompt_tokens(usage), usage["outputTokens"],
                  cached=usage.get("cacheReadInputTokens") or 0,
                  cache_write=usage.get("cacheWriteInputTokens") or 0)


def _prompt_tokens(usage: dict[str, Any]) -> int:
    return sum(usage.get(k) or 0 for k in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"))


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = _prompt_tokens(usage), usage.get("outputTokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": usage.get("cacheReadInputTokens") or 0,
                                      "cache_creation_tokens": usage.get("cacheWriteInputTokens") or 0}}


def finish_reason(stop_reason: Any, json_output: bool) -> str:
    if json_output and stop_reason == "tool_use":
        return "stop"  # the forced tool's input is the answer
    return FINISH_REASONS.get(stop_reason or "", "stop")


def answer_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)  # Converse's answers carry no id of their own


def to_chat_completion(parsed: dict[str, Any], model: str, json_name: str | None) -> dict[str, Any]:
    message = (parsed.get("output") or {}).get("message") or {}
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if "text" in block:
            texts.append(block["text"] or "")
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") or {}).decode()
            if json_name is not None and use.get("name") == json_name:
                texts.append(arguments)
                continue
            tool_calls.append({"id": use.get("toolUseId"), "type": "function",
                               "function": {"name": use.get("name"), "arguments": arguments}})
        elif "reasoningContent" in block:
            reasoning.append(((block["reasoningContent"] or {}).get("reasoningText") or {}).get("text") or "")
    reply: dict[str, Any] = {"role": "assistant",
                             "content": "".join(texts) if texts or not tool_calls else None,
                             "refusal": None}
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        reply["tool_calls"] = tool_calls
    answer: dict[str, Any] = {
        "id": answer_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": finish_reason(parsed.get("stopReason"), json_name is not None)}],
    }
    if isinstance(parsed.get("usage"), dict):
        answer["usage"] = openai_usage(parsed["usage"])
    return answer


def parse_answer(body: bytes) -> dict[str, Any]:
    return answer_object(body, "a response that is not a Converse answer",
                         lambda a: isinstance(a.get("output"), dict))
