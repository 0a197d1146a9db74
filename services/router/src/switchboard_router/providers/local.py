"""The built-in local model: deterministic answers with no network, in OpenAI's exact shapes.

It says back what it was told ("You said: ..."), with real token counts, so `make run` works with
no provider key and the whole gateway can be tried and tested end to end. Embeddings are unit
vectors drawn from a hash of the input: equal inputs give equal vectors.

Like a real model it has limits (README, "The local model"): it reads at most MAX_INPUT_CHARS of
input, writes at most MAX_OUTPUT_TOKENS per choice and MAX_CHOICES choices, and returns at most
MAX_FLOATS numbers of embeddings per request. Within them, its work never holds up the router's
event loop for more than about a millisecond: tokenizing runs in a worker thread (tiktoken releases
the GIL) and embeddings are built in slices that yield to the loop in between.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import struct
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from switchboard_common.errors import ApiError, InvalidRequest

from switchboard_router.domain import Endpoint, Tokens
from switchboard_router.providers.base import Call, Reply
from switchboard_router.tokens import Tokenizer, chat_chars, in_worker, input_chars

GREETING = "Hello! I am Switchboard's built-in local model. Send me a message and I will repeat it."
DIMENSIONS = 256
STREAM_PIECES = 8  # at most this many content messages, however long the answer
FINGERPRINT = "fp_switchboard_local"  # OpenAI's schema types it a string, never null
MAX_INPUT_CHARS = 1 << 20  # characters of text (or token ids) read per request: its "context"
MAX_OUTPUT_TOKENS = 4096  # per choice, as a real model's output limit; finish_reason "length"
MAX_CHOICES = 128  # n times the number of prompts
MAX_DIMENSIONS = 4096
# Numbers of embeddings per request (512 inputs at the default dimensions): about 2.7 MB of JSON,
# which the router copies a few times on its event loop on the way out.
MAX_FLOATS = 512 * DIMENSIONS
_SLICE_FLOATS = 4096  # embedding numbers built between two yields to the event loop (< 1 ms)
_PROMPT_DETAILS = {"cached_tokens": 0, "audio_tokens": 0}
_COMPLETION_DETAILS = {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                       "rejected_prediction_tokens": 0}


@dataclass(slots=True)
class _Tally:
    usage: Tokens | None = None
    error: ApiError | None = None

    def completion_tokens(self) -> int:
        return self.usage.completion if self.usage else 0  # usage is always known


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
            data, usage = await self.embeddings(call)
            return Reply(data=data, usage=usage, text=lambda: "")
        answer = await self.answer(call)
        body = (chat_completion if call.endpoint is Endpoint.CHAT else text_completion)(
            call, answer, int(self._clock()))
        return Reply(data=orjson.dumps(body), usage=answer.usage, text=lambda: "")

    def stream(self, call: Call) -> tuple[_Tally, AsyncGenerator[bytes, None]]:
        tally = _Tally()
        return tally, self._stream(call, tally)

    async def _stream(self, call: Call, tally: _Tally) -> AsyncGenerator[bytes, None]:
        answer = await self.answer(call)  # an error here comes before the first message
        tally.usage = answer.usage
        chunks = chat_chunks if call.endpoint is Endpoint.CHAT else text_chunks
        groups = chunks(call, answer, int(self._clock()))
        last = len(groups) - 1
        for n, group in enumerate(groups):
            data = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in group)
            yield data + b"data: [DONE]\n\n" if n == last else data

    async def answer(self, call: Call) -> _Answer:
        """The answer of a chat or completion; large inputs are tokenized in a worker thread."""
        if call.endpoint is Endpoint.CHAT:
            size, param = chat_chars(call.body.get("messages") or (), call.body.get("tools")), "messages"
        else:
            size, param = input_chars(call.body.get("prompt")), "prompt"
        _fits(size, param)
        if (choices := _choices(call)) > MAX_CHOICES:
            raise InvalidRequest(f"The local model writes at most {MAX_CHOICES} choices per request "
                                 f"(n times the prompts), but this request asks for {choices}.",
                                 param="n", code="invalid_value")
        return await in_worker(size, self._answer, call)

    def _answer(self, call: Call) -> _Answer:
        model, n = call.upstream_model, _whole(call.body.get("n")) or 1
        asked = _whole(call.body.get("max_completion_tokens"))
        if asked is None:
            asked = _whole(call.body.get("max_tokens"))
        limit = MAX_OUTPUT_TOKENS if asked is None else min(asked, MAX_OUTPUT_TOKENS)
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

    async def embeddings(self, call: Call) -> tuple[bytes, Tokens]:
        """The response's bytes: each vector built and encoded in turn, yielding to the loop
        between slices, so a large batch never holds the loop for long."""
        inputs: Any = call.body.get("input")  # validated: a text, texts, ids or lists of ids
        items: list[Any] = inputs if isinstance(inputs, list) and inputs and not isinstance(
            inputs[0], int) else [inputs]
        size = input_chars(inputs)
        _fits(size, "input")
        dims = _whole(call.body.get("dimensions")) or DIMENSIONS
        if dims > MAX_DIMENSIONS or dims * len(items) > MAX_FLOATS:
            raise InvalidRequest(
                f"The local model returns at most {MAX_DIMENSIONS} dimensions and {MAX_FLOATS} "
                f"numbers per request (inputs times dimensions), but this request asks for "
                f"{len(items)} x {dims}.", param="dimensions", code="invalid_value")
        as_base64 = call.body.get("encoding_format") == "base64"
        parts, built = [b'{"object":"list","data":['], 0
        for index, item in enumerate(items):
            packed = _vector(item, dims)
            vector = base64.b64encode(packed).decode() if as_base64 else \
                list(struct.unpack(f"<{dims}f", packed))
            parts += [b"," if index else b"",
                      orjson.dumps({"object": "embedding", "index": index, "embedding": vector})]
            built += dims
            if built >= _SLICE_FLOATS:
                built = 0
                await asyncio.sleep(0)
        prompt = await in_worker(size, self._tokenizer.count_inputs, call.upstream_model, inputs)
        usage = {"prompt_tokens": prompt, "total_tokens": prompt}
        parts += [b'],"model":', orjson.dumps(call.model), b',"usage":', orjson.dumps(usage), b"}"]
        return b"".join(parts), Tokens(prompt, 0)  # one copy of the whole answer


def _fits(size: int, param: str) -> None:
    """The local model's context, checked before any work (OpenAI's words for the same refusal)."""
    if size > MAX_INPUT_CHARS:
        raise InvalidRequest(
            f"This model's maximum context length is {MAX_INPUT_CHARS} characters. However, your "
            f"{param} resulted in {size} characters. Please reduce the length of the {param}.",
            param=param, code="context_length_exceeded")


def _whole(value: Any) -> int | None:
    """An integer field as validation let it through (5 or 5.0); None when absent."""
    return None if value is None or isinstance(value, bool) else int(value)


def chat_completion(call: Call, answer: _Answer, created: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{call.request_id}", "object": "chat.completion", "created": created,
        "model": call.model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text, "refusal": None,
                                             "annotations": []},
                     "logprobs": None, "finish_reason": answer.finish[i]}
                    for i, text in enumerate(answer.texts)],
        "usage": _usage(answer.usage), "service_tier": "default", "system_fingerprint": FINGERPRINT,
    }


def text_completion(call: Call, answer: _Answer, created: int) -> dict[str, Any]:
    return {
        "id": f"cmpl-{call.request_id}", "object": "text_completion", "created": created,
        "model": call.model,
        "choices": [{"text": text, "index": i, "logprobs": None, "finish_reason": answer.finish[i]}
                    for i, text in enumerate(answer.texts)],
        "usage": _usage(answer.usage), "system_fingerprint": FINGERPRINT,
    }


def chat_chunks(call: Call, answer: _Answer, created: int) -> list[list[dict[str, Any]]]:
    """The stream's chunks grouped per message, as a provider's reads would group them."""
    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk",
               "created": created, "model": call.model, "service_tier": "default",
               "system_fingerprint": FINGERPRINT, "choices": choices}
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
        # No "usage": null on the chunks before the last: OpenAI's schema of a completion chunk
        # (unlike a chat chunk's) does not let usage be null.
        return {"id": f"cmpl-{call.request_id}", "object": "text_completion", "created": created,
                "model": call.model, "system_fingerprint": FINGERPRINT, "choices": choices}

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


def _pieces(text: str) -> list[str]:
    """The text in up to STREAM_PIECES runs of whole words, each keeping its leading space."""
    words = text.split(" ")
    words = [words[0], *(" " + w for w in words[1:])]
    size = max(1, math.ceil(len(words) / STREAM_PIECES))
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def _usage(t: Tokens) -> dict[str, Any]:
    return {"prompt_tokens": t.prompt, "completion_tokens": t.completion, "total_tokens": t.total,
            "prompt_tokens_details": _PROMPT_DETAILS, "completion_tokens_details": _COMPLETION_DETAILS}


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
        if isinstance(prompt[0], int):  # validation made the array all token ids
            return [_decoded(decode, prompt, "prompt")]
        return [p.strip() if isinstance(p, str) else _decoded(decode, p, f"prompt[{i}]")
                for i, p in enumerate(prompt)]
    return [""]  # null or []: OpenAI starts from the document separator


def _decoded(decode: Callable[[list[int]], str], ids: list[int], param: str) -> str:
    try:
        return decode(ids).strip()
    except (KeyError, OverflowError, ValueError):  # tiktoken's words for an id it has no bytes for
        raise InvalidRequest(f"Invalid '{param}': it holds a token id that is not in the local "
                             "model's vocabulary.", param=param, code="invalid_value") from None


def _choices(call: Call) -> int:
    prompt = call.body.get("prompt")
    prompts = len(prompt) if call.endpoint is Endpoint.COMPLETIONS and isinstance(prompt, list) \
        and prompt and not isinstance(prompt[0], int) else 1
    return (_whole(call.body.get("n")) or 1) * prompts


def _vector(item: Any, dims: int) -> bytes:
    """A unit vector of float32, little-endian, from a hash of the input."""
    seed = item.encode() if isinstance(item, str) else orjson.dumps(item)
    raw = hashlib.shake_256(b"switchboard-local-embedding:" + seed).digest(4 * dims)
    values = [v / 2147483648.0 - 1.0 for v in struct.unpack(f"<{dims}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return struct.pack(f"<{dims}f", *(v / norm for v in values))
