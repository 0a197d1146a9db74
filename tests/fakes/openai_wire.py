"""OpenAI's response bodies and SSE events, rendered from answers as plain bytes (no I/O)."""

from __future__ import annotations

import re

import base64
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from tests.fakes.openai_answers import Answer

# Shapes follow https://platform.openai.com/docs/api-reference/chat/object and /chat/streaming;
# key order follows what api.openai.com sends, so byte-level fixtures look like the real thing.
SYSTEM_FINGERPRINT = "fp_560af6e559"
SERVICE_TIER = "default"
DONE = b"data: [DONE]\n\n"
# (id, created, owned_by) as GET /v1/models lists them.
MODELS = (
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-4o", 1715367049, "system"),
    ("text-embedding-3-small", 1705948997, "system"),
)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None
               ) -> bytes:
    error = {"message": message, "type": type_, "param": param, "code": code}
    return orjson.dumps({"error": error})


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def chat_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(response_id: str, created: int, model: str, answer: Answer, n: int) -> bytes:
    """A `chat.completion` object with `n` identical choices."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls
        ]
    message["refusal"] = None
    message["annotations"] = []
    choices = [
        {"index": i, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}
        for i in range(n)
    ]
    return orjson.dumps({
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": chat_usage(answer.prompt_tokens, answer.completion_tokens * n),
        "service_tier": SERVICE_TIER,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    })


def chat_stream(response_id: str, created: int, model: str, answer: Answer, n: int,
                include_usage: bool) -> list[bytes]:
    """The SSE events of a streamed chat completion, `data: [DONE]` included."""
    head = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": SERVICE_TIER,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data = {**head, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                     "finish_reason": finish_reason}]}
        if include_usage:
            # With include_usage every chunk carries the key, null until the last one.
            data["usage"] = None
        return event(data)

    deltas = _tool_deltas(answer) if answer.tool_calls else _content_deltas(answer)
    events = [chunk(i, delta) for delta in deltas for i in range(n)]
    events += [chunk(i, {}, answer.finish_reason) for i in range(n)]
    if include_usage:
        usage = chat_usage(answer.prompt_tokens, answer.completion_tokens * n)
        events.append(event({**head, "choices": [], "usage": usage}))
    events.append(DONE)
    return events


def sized_chat_stream(response_id: str, created: int, model: str, answer: Answer,
                      include_usage: bool, size: int) -> Iterator[bytes]:
    """A streamed chat answer of about `size` bytes: the answer's words over and over, one word a
    chunk as OpenAI streams them, then the finish, the usage if asked, and [DONE]. Yields writes
    of about 256 KiB, rendered once, so the fake can stream hundreds of megabytes quickly."""
    words = answer.pieces or ("x",)
    one = Answer(answer.content, words, "length", answer.prompt_tokens)
    events = chat_stream(response_id, created, model, one, 1, include_usage)
    first, cycle, tail = events[0], b"".join(events[1:1 + len(words)]), events[1 + len(words):]
    repeats = max(1, (256 * 1024) // len(cycle))
    block, per_block = cycle * repeats, len(words) * repeats
    yield first
    sent, pieces = len(first), 0
    while sent < size:
        yield block
        sent, pieces = sent + len(block), pieces + per_block
    if include_usage:  # the finish chunk, then the usage chunk counting every piece sent
        finish, _usage, done = tail
        usage = chat_usage(answer.prompt_tokens, pieces)
        yield finish + event({"id": response_id, "object": "chat.completion.chunk",
                              "created": created, "model": model, "service_tier": SERVICE_TIER,
                              "system_fingerprint": SYSTEM_FINGERPRINT, "choices": [],
                              "usage": usage}) + done
    else:
        yield b"".join(tail)


def text_completion(response_id: str, created: int, model: str, answers: Sequence[Answer],
                    n: int) -> bytes:
    """A legacy `text_completion` object: `n` choices per prompt, indexed prompt-major."""
    choices = [
        {"text": a.content, "index": p * n + i, "logprobs": None, "finish_reason": a.finish_reason}
        for p, a in enumerate(answers) for i in range(n)
    ]
    return orjson.dumps({
        "id": response_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": _legacy_usage(answers, n),
    })


def text_completion_stream(response_id: str, created: int, model: str, answers: Sequence[Answer],
                           n: int, include_usage: bool) -> list[bytes]:
    head = {"id": response_id, "object": "text_completion", "created": created}

    def chunk(index: int, text: str, finish_reason: str | None = None) -> bytes:
        data = {**head, "choices": [{"text": text, "index": index, "logprobs": None,
                                     "finish_reason": finish_reason}], "model": model}
        if include_usage:
            data["usage"] = None
        return event(data)

    events = []
    for p, answer in enumerate(answers):
        for i in range(n):
            events += [chunk(p * n + i, piece) for piece in answer.pieces]
            events.append(chunk(p * n + i, "", answer.finish_reason))
    if include_usage:
        events.append(event({**head, "choices": [], "model": model,
                             "usage": _legacy_usage(answers, n)}))
    events.append(DONE)
    return events


def embeddings(model: str, vectors: Sequence[list[float]], prompt_tokens: int,
               as_base64: bool) -> bytes:
    """An embeddings list; base64 is little-endian float32, which the SDK decodes by default."""
    data = [
        {"object": "embedding", "index": i,
         "embedding": _base64_floats(v) if as_base64 else v}
        for i, v in enumerate(vectors)
    ]
    return orjson.dumps({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })


def model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def models_list() -> bytes:
    return orjson.dumps({"object": "list", "data": [model_object(*m) for m in MODELS]})


def _content_deltas(answer: Answer) -> list[dict[str, Any]]:
    first = {"role": "assistant", "content": "", "refusal": None}
    return [first] + [{"content": piece} for piece in answer.pieces]


def _tool_deltas(answer: Answer) -> list[dict[str, Any]]:
    """Per call, in order: its id and name with empty arguments, then its argument fragments
    (parallel calls one after the other, each with its own index, as OpenAI streams them)."""
    out: list[dict[str, Any]] = []
    for index, call in enumerate(answer.tool_calls):
        head: dict[str, Any] = {"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                                "function": {"name": call.name, "arguments": ""}}]}
        if index == 0:
            head = {"role": "assistant", "content": None, **head, "refusal": None}
        out.append(head)
        out += [{"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in re.findall(r".{1,8}", call.arguments, re.S)]
    return out


def _legacy_usage(answers: Sequence[Answer], n: int) -> dict[str, int]:
    prompt = sum(a.prompt_tokens for a in answers)
    completion = sum(a.completion_tokens for a in answers) * n
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _base64_floats(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
