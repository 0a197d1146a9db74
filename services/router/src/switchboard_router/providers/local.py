"""The built-in local model: deterministic answers with no network, in OpenAI's exact shapes.

It says back what it was told ("You said: ..."), with real token counts, so `make run` works with
no provider key and the whole gateway can be tried and tested end to end. Embeddings are unit
vectors drawn from a hash of the input: equal inputs give equal vectors.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from switchboard_common.errors import ApiError

from switchboard_router.domain import Endpoint, Tokens
from switchboard_router.providers.base import Call, Reply
from switchboard_router.tokens import Tokenizer

GREETING = "Hello! I am Switchboard's built-in local model. Send me a message and I will repeat it."
DIMENSIONS = 256
STREAM_PIECES = 8  # at most this many content messages, however long the answer
_PROMPT_DETAILS = {"cached_tokens": 0, "audio_tokens": 0}
_COMPLETION_DETAILS = {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                       "rejected_prediction_tokens": 0}


@dataclass(slots=True)
class _Tally:
    usage: Tokens | None = None
    error: ApiError | None = None

    def completion_text(self) -> str:
        return ""  # usage is always known


@dataclass(slots=True)
class _Answer:
    texts: list[str]  # one per choice
    finish: list[str]
    usage: Tokens


class LocalProvider:
    endpoints = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS})

    def __init__(self, tokenizer: Tokenizer, clock: Callable[[], float] = time.time) -> None:
        self._tokenizer = tokenizer
        self._clock = clock

    async def send(self, call: Call) -> Reply:
        if call.endpoint is Endpoint.EMBEDDINGS:
            body, usage = self.embeddings(call)
        else:
            answer = self.answer(call)
            body = (chat_completion if call.endpoint is Endpoint.CHAT else text_completion)(
                call, answer, int(self._clock()))
            usage = answer.usage
        return Reply(data=orjson.dumps(body), usage=usage, text=lambda: "")

    def stream(self, call: Call) -> tuple[_Tally, AsyncIterator[bytes]]:
        answer = self.answer(call)
        tally = _Tally(usage=answer.usage)
        chunks = chat_chunks if call.endpoint is Endpoint.CHAT else text_chunks
        return tally, _messages(chunks(call, answer, int(self._clock())))

    def answer(self, call: Call) -> _Answer:
        model, n = call.upstream_model, _n(call.body)
        limit = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
        if call.endpoint is Endpoint.CHAT:
            prompts = [_last_user_text(call.body.get("messages") or ())]
            prompt_tokens = self._tokenizer.count_chat(model, call.body.get("messages") or (),
                                                       call.body.get("tools"))
        else:
            prompts = _prompts(call.body.get("prompt"), self._tokenizer.encoding(model).decode)
            prompt_tokens = self._tokenizer.count_inputs(model, call.body.get("prompt"))
        texts, finish, completion = [], [], 0
        for prompt in prompts:
            full = f"You said: {prompt}" if prompt else GREETING
            text, count, cut = self._tokenizer.truncate(model, full, limit)
            texts += [text] * n
            finish += ["length" if cut else "stop"] * n
            completion += count * n
        return _Answer(texts, finish, Tokens(prompt_tokens, completion))

    def embeddings(self, call: Call) -> tuple[dict[str, Any], Tokens]:
        inputs = call.body.get("input")
        items = [inputs] if isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and all(isinstance(i, int) for i in inputs)) else inputs
        dims = call.body.get("dimensions") or DIMENSIONS
        as_base64 = call.body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(items):
            packed = _vector(item, dims)
            vector = base64.b64encode(packed).decode() if as_base64 else \
                list(struct.unpack(f"<{dims}f", packed))
            data.append({"object": "embedding", "index": index, "embedding": vector})
        prompt = self._tokenizer.count_inputs(call.upstream_model, inputs)
        body = {"object": "list", "data": data, "model": call.model,
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt}}
        return body, Tokens(prompt, 0)


def chat_completion(call: Call, answer: _Answer, created: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{call.request_id}", "object": "chat.completion", "created": created,
        "model": call.model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text, "refusal": None,
                                             "annotations": []},
                     "logprobs": None, "finish_reason": answer.finish[i]}
                    for i, text in enumerate(answer.texts)],
        "usage": _usage(answer.usage), "service_tier": "default", "system_fingerprint": None,
    }


def text_completion(call: Call, answer: _Answer, created: int) -> dict[str, Any]:
    return {
        "id": f"cmpl-{call.request_id}", "object": "text_completion", "created": created,
        "model": call.model,
        "choices": [{"text": text, "index": i, "logprobs": None, "finish_reason": answer.finish[i]}
                    for i, text in enumerate(answer.texts)],
        "usage": _usage(answer.usage), "system_fingerprint": None,
    }


def chat_chunks(call: Call, answer: _Answer, created: int) -> list[list[dict[str, Any]]]:
    """The stream's chunks grouped per message, as a provider's reads would group them."""
    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk",
               "created": created, "model": call.model, "service_tier": "default",
               "system_fingerprint": None, "choices": choices}
        if call.include_usage:
            out["usage"] = None  # as OpenAI does on every chunk but the last
        return out

    def delta(i: int, d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": i, "delta": d, "logprobs": None, "finish_reason": finish}

    indexes = range(len(answer.texts))
    groups = [[chunk([delta(i, {"role": "assistant", "content": "", "refusal": None})])
               for i in indexes]]
    pieces = [_pieces(text) for text in answer.texts]
    for step in range(max(map(len, pieces), default=0)):
        groups.append([chunk([delta(i, {"content": pieces[i][step]})])
                       for i in indexes if step < len(pieces[i])])
    groups.append([chunk([delta(i, {}, answer.finish[i])]) for i in indexes])
    if call.include_usage:
        groups[-1].append({**chunk([]), "usage": _usage(answer.usage)})
    return groups


def text_chunks(call: Call, answer: _Answer, created: int) -> list[list[dict[str, Any]]]:
    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out = {"id": f"cmpl-{call.request_id}", "object": "text_completion", "created": created,
               "model": call.model, "system_fingerprint": None, "choices": choices}
        if call.include_usage:
            out["usage"] = None
        return out

    def choice(i: int, text: str, finish: str | None = None) -> dict[str, Any]:
        return {"text": text, "index": i, "logprobs": None, "finish_reason": finish}

    indexes = range(len(answer.texts))
    pieces = [_pieces(text) for text in answer.texts]
    groups = [[chunk([choice(i, pieces[i][step])]) for i in indexes if step < len(pieces[i])]
              for step in range(max(map(len, pieces), default=0))]
    groups.append([chunk([choice(i, "", answer.finish[i])]) for i in indexes])
    if call.include_usage:
        groups[-1].append({**chunk([]), "usage": _usage(answer.usage)})
    return groups


async def _messages(groups: list[list[dict[str, Any]]]) -> AsyncIterator[bytes]:
    last = len(groups) - 1
    for n, group in enumerate(groups):
        data = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in group)
        yield data + b"data: [DONE]\n\n" if n == last else data


def _pieces(text: str) -> list[str]:
    """The text in up to STREAM_PIECES runs of whole words, each keeping its leading space."""
    words = text.split(" ")
    words = [words[0], *(" " + w for w in words[1:])]
    size = max(1, math.ceil(len(words) / STREAM_PIECES))
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def _usage(t: Tokens) -> dict[str, Any]:
    return {"prompt_tokens": t.prompt, "completion_tokens": t.completion, "total_tokens": t.total,
            "prompt_tokens_details": _PROMPT_DETAILS, "completion_tokens_details": _COMPLETION_DETAILS}


def _n(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content.strip()
            if isinstance(content, list):
                return " ".join(p["text"] for p in content
                                if isinstance(p, dict) and isinstance(p.get("text"), str)).strip()
    return ""


def _prompts(prompt: Any, decode: Callable[[list[int]], str]) -> list[str]:
    if isinstance(prompt, str):
        return [prompt.strip()]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(t, int) for t in prompt):
            return [decode(prompt).strip()]
        return [p.strip() if isinstance(p, str) else decode(p).strip() for p in prompt]
    return [""]


def _vector(item: Any, dims: int) -> bytes:
    """A unit vector of float32, little-endian, from a hash of the input."""
    seed = item.encode() if isinstance(item, str) else orjson.dumps(item)
    raw = hashlib.shake_256(b"switchboard-local-embedding:" + seed).digest(4 * dims)
    values = [v / 2147483648.0 - 1.0 for v in struct.unpack(f"<{dims}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return struct.pack(f"<{dims}f", *(v / norm for v in values))
