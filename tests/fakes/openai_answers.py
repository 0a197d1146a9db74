"""What the fake model says: an echo of the last user message, a tool call, or hashed vectors."""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Any

import orjson

ECHO_PREFIX = "Echo: "
TOOL_TRIGGER = "call_tool"
# The legacy completions endpoint stops at 16 tokens unless max_tokens says otherwise.
# https://platform.openai.com/docs/api-reference/completions/create#completions-create-max_tokens
LEGACY_MAX_TOKENS = 16
DEFAULT_DIMENSIONS = 8
_WORD = re.compile(r"\s*\S+")
_ARGUMENT_PIECE = re.compile(r".{1,8}", re.S)
_SAMPLE_VALUES = {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    """One choice's answer; `pieces` are its stream deltas (content words or argument fragments)."""

    content: str | None
    pieces: tuple[str, ...]
    finish_reason: str
    prompt_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)


def count_tokens(text: str) -> int:
    """Whitespace-separated words: deterministic and offline (tiktoken would fetch BPE files)."""
    return len(text.split())


def split_words(text: str) -> tuple[str, ...]:
    """Words with their leading whitespace, so the pieces join back to exactly `text`."""
    pieces = _WORD.findall(text)
    rest = text[sum(map(len, pieces)):]
    if not pieces:
        return (rest,) if rest else ()
    pieces[-1] += rest
    return tuple(pieces)


def message_text(content: Any) -> str:
    """The text of a message's content, whether a string, an array of parts, or null."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content
                        if isinstance(part, dict) and part.get("type") == "text")
    return ""


def last_user_text(messages: Any) -> str:
    """The text of the last user message; "" when there is none (or `messages` is malformed)."""
    for message in reversed(messages if isinstance(messages, list) else ()):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def chat_answer(body: dict[str, Any], call_id: str) -> Answer:
    """Echo the last user message, or call a tool when asked to; honour max_(completion_)tokens."""
    messages = body["messages"]
    prompt_tokens = sum(count_tokens(message_text(m.get("content"))) for m in messages)
    text = last_user_text(messages)
    function = _chosen_function(body, text)
    if function is not None:
        arguments = _sample_arguments(function)
        return Answer(None, tuple(_ARGUMENT_PIECE.findall(arguments)), "tool_calls", prompt_tokens,
                      (ToolCall(call_id, function["name"], arguments),))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return _echo(text, prompt_tokens, limit)


def completion_answers(body: dict[str, Any]) -> list[Answer]:
    """One answer per prompt of a legacy completion request."""
    prompt = body["prompt"]
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
        prompt = [prompt]
    limit = body.get("max_tokens", LEGACY_MAX_TOKENS) or None
    answers = []
    for item in prompt:
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens = count_tokens(item) if isinstance(item, str) else len(item)
        answers.append(_echo(text, tokens, limit))
    return answers


def embedding_inputs(body: dict[str, Any]) -> list[str | list[int]]:
    inputs = body["input"]
    if isinstance(inputs, str) or isinstance(inputs[0], int):
        return [inputs]
    return inputs


def input_tokens(item: str | list[int]) -> int:
    return count_tokens(item) if isinstance(item, str) else len(item)


def embedding_vector(item: str | list[int], dimensions: int) -> list[float]:
    """A unit vector seeded by the input, so equal inputs embed equally across runs."""
    seed = int.from_bytes(hashlib.blake2b(orjson.dumps(item), digest_size=8).digest(), "big")
    rng = random.Random(seed)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [round(x / norm, 8) for x in vector]


def _echo(text: str, prompt_tokens: int, limit: int | None) -> Answer:
    pieces = split_words(ECHO_PREFIX + text)
    finish_reason = "stop"
    if limit is not None and len(pieces) > limit:
        pieces, finish_reason = pieces[:limit], "length"
    return Answer("".join(pieces), pieces, finish_reason, prompt_tokens)


def _chosen_function(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    """The function to call: the one tool_choice names, or the first when forced or triggered."""
    functions = [t["function"] for t in body.get("tools") or () if t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        return next((f for f in functions if f["name"] == wanted), functions[0])
    if choice == "required" or TOOL_TRIGGER in text:
        return functions[0]
    return None


def _sample_arguments(function: dict[str, Any]) -> str:
    """Arguments fitting the function's JSON schema: "fake" for strings, simple values otherwise."""
    properties = (function.get("parameters") or {}).get("properties") or {}
    arguments = {}
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        enum = spec.get("enum") if isinstance(spec, dict) else None
        arguments[name] = enum[0] if enum else _SAMPLE_VALUES.get(kind, "fake")
    return orjson.dumps(arguments).decode()
