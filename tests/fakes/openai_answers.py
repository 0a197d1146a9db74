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
PARALLEL_TRIGGER = "call_tools"  # one call per declared function, as parallel tool calls
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
    candidates: list[Any] = messages if isinstance(messages, list) else []
    for message in reversed(candidates):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def chat_answer(body: dict[str, Any], call_id: str, echo_all: bool = False) -> Answer:
    """Echo the last user message (with " [N image(s)]" when it has images), call tools when asked
    to ("call_tools": every function, in parallel), echo tool results after them
    ("Echo: r1 | r2"), or answer a json_schema response_format with an object fitting the schema;
    honour max_(completion_)tokens. With `echo_all`, echo every message ("role: text | ...")."""
    messages = body["messages"]
    prompt_tokens = sum(count_tokens(message_text(m.get("content"))) for m in messages)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    results = _trailing_tool_results(messages)
    if results:
        return _echo(" | ".join(results), prompt_tokens, limit)
    text = last_user_text(messages)
    if echo_all:
        text = " | ".join(f"{m.get('role')}: {message_text(m.get('content'))}" for m in messages)
    function = _chosen_function(body, text)
    if function is not None:
        functions = [function]
        if PARALLEL_TRIGGER in text and body.get("parallel_tool_calls") is not False and \
                not isinstance(body.get("tool_choice"), dict):
            functions = [t["function"] for t in body["tools"] if t.get("type") == "function"]
        calls = tuple(ToolCall(call_id if i == 0 else f"{call_id}_{i}", f["name"], _sample_arguments(f))
                      for i, f in enumerate(functions))
        pieces = tuple(p for c in calls for p in _ARGUMENT_PIECE.findall(c.arguments))
        return Answer(None, pieces, "tool_calls", prompt_tokens, calls)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        reply = orjson.dumps(_sample_arguments({"parameters": schema}, as_json=False)).decode()
        pieces = split_words(reply)
        return Answer(reply, pieces, "stop", prompt_tokens)
    images = _last_user_images(messages)
    return _echo(text + (f" [{images} image(s)]" if images else ""), prompt_tokens, limit)


def _trailing_tool_results(messages: list[Any]) -> list[str]:
    """The contents of the tool messages that end the conversation (answers to tool calls)."""
    out: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        out.insert(0, message_text(message.get("content")))
    return out


def _last_user_images(messages: list[Any]) -> int:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url") \
                if isinstance(content, list) else 0
    return 0


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


def _sample_arguments(function: dict[str, Any], as_json: bool = True) -> Any:
    """Arguments fitting the function's JSON schema: "fake" for strings, simple values otherwise."""
    properties = (function.get("parameters") or {}).get("properties") or {}
    arguments = {}
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        enum = spec.get("enum") if isinstance(spec, dict) else None
        arguments[name] = enum[0] if enum else _SAMPLE_VALUES.get(str(kind), "fake")
    return orjson.dumps(arguments).decode() if as_json else arguments
