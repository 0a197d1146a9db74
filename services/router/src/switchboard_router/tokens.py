"""Token counting with tiktoken, offline: the BPE files ship in switchboard_common (`bpe`) and
load once at start.

Used for the built-in local model and when a provider reports no usage (a stream without usage, an
aborted stream). Counting a large text takes milliseconds per megabyte, so callers on the event loop
run it through `in_worker`: tiktoken's Rust core releases the GIL, and the loop keeps serving while
a worker thread counts. o200k_base serves the gpt-4o / gpt-4.1 / o-series / gpt-5 names, cl100k_base
gpt-4, gpt-3.5 and OpenAI's embedding models; every other model (other vendors' Llama, Mistral,
DeepSeek ...) is counted with o200k_base as a documented estimate, since their tokenizers differ.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson
import tiktoken

from switchboard_common.bpe import DATA_DIR, ENCODINGS, encoding_name_for, load_encoding
from switchboard_common.message_text import texts

from switchboard_router.domain import Endpoint

# Below this many characters a count takes well under a millisecond: cheaper inline than a thread.
INLINE_CHARS = 32_768
_T = TypeVar("_T")
_TOKENS_PER_MESSAGE = 3  # OpenAI cookbook, "How to count tokens with tiktoken"
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3


class Tokenizer:
    """Counts tokens per model. Build it once per process with `Tokenizer.load()` (about a second)."""

    def __init__(self, encodings: dict[str, tiktoken.Encoding]) -> None:
        self._encodings = encodings
        self._by_model: dict[str, tiktoken.Encoding] = {}
        self._roles: dict[tuple[str, str], int] = {}

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR) -> Tokenizer:
        return cls({name: load_encoding(name, data_dir) for name in ENCODINGS})

    def encoding(self, model: str) -> tiktoken.Encoding:
        enc = self._by_model.get(model)
        if enc is None:
            if len(self._by_model) > 4096:  # client-chosen names must not grow this forever
                self._by_model.clear()
            enc = self._by_model[model] = self._encodings[encoding_name_for(model)]
        return enc

    def count(self, model: str, text: str) -> int:
        return len(_ids(self.encoding(model), text)) if text else 0

    def truncate(self, model: str, text: str, max_tokens: int | None) -> tuple[str, int, bool]:
        """(text cut to at most max_tokens tokens, its token count, whether it was cut)."""
        enc = self.encoding(model)
        ids = _ids(enc, text)
        if max_tokens is None or len(ids) <= max_tokens:
            return text, len(ids), False
        return enc.decode(ids[:max_tokens].tolist()), max_tokens, True

    def count_chat(self, model: str, messages: Iterable[Any], tools: Any = None) -> int:
        """Prompt tokens of a chat request, the way OpenAI's cookbook counts them."""
        enc = self.encoding(model)
        total = _REPLY_PRIMING
        for message in messages:
            total += _TOKENS_PER_MESSAGE
            if not isinstance(message, dict):
                continue
            for key, value in message.items():
                if key == "role" and isinstance(value, str):
                    total += self._role_tokens(enc, value)
                elif isinstance(value, str):  # the common content: no generators
                    total += len(_ids(enc, value))
                else:
                    total += sum(len(_ids(enc, text)) for text in texts(value))
                if key == "name":
                    total += _TOKENS_PER_NAME
        if tools:
            # Tool definitions reach the model in a format OpenAI does not publish; their JSON is
            # a close, slightly high estimate.
            total += len(_ids(enc, orjson.dumps(tools).decode()))
        return total

    def _role_tokens(self, enc: tiktoken.Encoding, role: str) -> int:
        """A role's count, remembered: a handful of names, each counted on every message."""
        n = self._roles.get((enc.name, role))
        if n is None:
            if len(self._roles) > 64:  # a role the validation let through is still bounded
                self._roles.clear()
            n = self._roles[(enc.name, role)] = len(_ids(enc, role))
        return n

    def count_prompt(self, endpoint: Endpoint, model: str, body: dict[str, Any]) -> int:
        """Prompt tokens of any request, for usage when the provider reported none."""
        if endpoint is Endpoint.CHAT:
            return self.count_chat(model, body.get("messages") or (), body.get("tools"))
        if endpoint is Endpoint.COMPLETIONS:
            return self.count_inputs(model, body.get("prompt"))
        if endpoint is Endpoint.EMBEDDINGS:
            return self.count_inputs(model, body.get("input"))
        return 0

    def count_inputs(self, model: str, value: Any) -> int:
        """A prompt or embedding input: text, texts, token ids or lists of token ids."""
        if isinstance(value, str):
            return self.count(model, value)
        if isinstance(value, list):
            if value and isinstance(value[0], int):  # validation made them all token ids
                return len(value)
            return sum(self.count_inputs(model, v) for v in value)
        return 0


async def in_worker(chars: int, fn: Callable[..., _T], /, *args: Any) -> _T:
    """fn(*args), in a worker thread when it reads more than INLINE_CHARS characters, so that
    tokenizing a large input never holds up the event loop (the Rust core releases the GIL)."""
    if chars <= INLINE_CHARS:
        return fn(*args)
    return await off_loop(fn, *args)


async def off_loop(fn: Callable[..., _T], /, *args: Any) -> _T:
    """fn(*args) in one of the tokenizing threads."""
    return await asyncio.get_running_loop().run_in_executor(_workers(), fn, *args)


@functools.cache
def _workers() -> ThreadPoolExecutor:
    """Threads for CPU-heavy work, made on first use. They run at a lower priority than the
    event loop's thread: on a busy machine a large count slows down, small requests do not."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="tokenize",
                              initializer=_lower_priority)


def _lower_priority() -> None:
    try:  # per thread on Linux (a thread is a task with its own nice value)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # elsewhere, or not permitted: run at the usual priority
        pass


def _ids(enc: tiktoken.Encoding, text: str) -> memoryview:
    """The token ids as a flat buffer: no Python int per token, and the GIL released throughout.
    (tiktoken's public encode_to_numpy wraps this same call; an empty allowed set encodes
    special-token text as ordinary text, as encode_ordinary does.)"""
    # The buffer reports its shape in bytes: recast it as the uint32 array it holds.
    return memoryview(enc._core_bpe.encode_to_tiktoken_buffer(text, set())).cast("B").cast("I")


def input_chars(value: Any) -> int:
    """The size of a prompt or embedding input: characters of text plus one per token id."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(v) if isinstance(v, (str, list)) else 1 for v in value)
    return 0


def chat_chars(messages: Iterable[Any], tools: Any = None) -> int:
    """The characters of text in chat messages (and tool definitions) that counting would read."""
    total = 0
    for m in messages:
        if isinstance(m, dict):
            for value in m.values():
                total += len(value) if isinstance(value, str) else sum(len(t) for t in texts(value))
    return total + (len(orjson.dumps(tools)) if tools else 0)
