"""The counts in a Chat Completions `usage` object, read once for both inbound answers
(messages_answer.py, responses_answer.py), which only differ in how they lay them out. Pure."""

from __future__ import annotations

from typing import Any, NamedTuple


class ChatUsage(NamedTuple):
    prompt: int  # OpenAI's prompt_tokens: cache reads and writes included
    completion: int
    cache_read: int
    cache_write: int  # the gateway's cache_creation_tokens detail (Anthropic's cache writes)
    reasoning: int


def read(openai_usage: Any) -> ChatUsage:
    """Missing or null counts are 0 (a usage object the provider left out counts nothing)."""
    u = openai_usage if isinstance(openai_usage, dict) else {}
    prompt = u.get("prompt_tokens_details") or {}
    completion = u.get("completion_tokens_details") or {}
    return ChatUsage(prompt=u.get("prompt_tokens") or 0, completion=u.get("completion_tokens") or 0,
                     cache_read=prompt.get("cached_tokens") or 0,
                     cache_write=prompt.get("cache_creation_tokens") or 0,
                     reasoning=completion.get("reasoning_tokens") or 0)
