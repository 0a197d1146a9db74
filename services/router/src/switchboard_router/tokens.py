"""Token counting with tiktoken, offline: the BPE files ship in tokenizer_data/ and load once at start.

Used for the built-in local model and when a provider reports no usage (a stream without usage, an
aborted stream). o200k_base serves the gpt-4o / gpt-4.1 / o-series / gpt-5 names, cl100k_base
gpt-4, gpt-3.5 and OpenAI's embedding models; every other model (other vendors' Llama, Mistral,
DeepSeek ...) is counted with o200k_base as a documented estimate, since their tokenizers differ.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import tiktoken

from switchboard_router.domain import Endpoint

DATA_DIR = Path(__file__).parent / "tokenizer_data"
FALLBACK = "o200k_base"

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"
# pat_str and special tokens exactly as tiktoken_ext/openai_public.py defines them.
_ENCODINGS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        "special_tokens": {_ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                           "<|fim_suffix|>": 100260, _ENDOFPROMPT: 100276},
    },
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        "special_tokens": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    },
}

# As tiktoken/model.py maps them, limited to the two encodings we ship.
_EXACT = {
    "gpt-4": "cl100k_base", "gpt-3.5-turbo": "cl100k_base", "gpt-3.5": "cl100k_base",
    "gpt-35-turbo": "cl100k_base", "davinci-002": "cl100k_base", "babbage-002": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base", "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
}
_PREFIXES = (  # longest first: "gpt-4o" must win over "gpt-4"
    ("ft:gpt-3.5-turbo", "cl100k_base"), ("gpt-3.5-turbo-", "cl100k_base"),
    ("gpt-35-turbo-", "cl100k_base"), ("chatgpt-4o", "o200k_base"), ("ft:gpt-4o", "o200k_base"),
    ("gpt-4.5", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4o", "o200k_base"),
    ("ft:gpt-4", "cl100k_base"), ("gpt-4-", "cl100k_base"), ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"), ("o3", "o200k_base"), ("o4", "o200k_base"),
)
_TOKENS_PER_MESSAGE = 3  # OpenAI cookbook, "How to count tokens with tiktoken"
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3


def load_encoding(name: str, data_dir: Path = DATA_DIR) -> tiktoken.Encoding:
    spec = _ENCODINGS[name]
    blob = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
    if hashlib.sha256(blob).hexdigest() != spec["sha256"]:
        raise RuntimeError(f"{data_dir / name}.tiktoken.gz does not hold the expected {name} ranks")
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in blob.splitlines() if line)}
    return tiktoken.Encoding(name, pat_str=spec["pat_str"], mergeable_ranks=ranks,
                             special_tokens=spec["special_tokens"])


def encoding_name_for(model: str) -> str:
    """The encoding for a model name; a vendor prefix such as "openai/" is ignored."""
    name = model.rpartition("/")[2]
    if name in _EXACT:
        return _EXACT[name]
    for prefix, encoding in _PREFIXES:
        if name.startswith(prefix):
            return encoding
    return FALLBACK


class Tokenizer:
    """Counts tokens per model. Build it once per process with `Tokenizer.load()` (about a second)."""

    def __init__(self, encodings: dict[str, tiktoken.Encoding]) -> None:
        self._encodings = encodings
        self._by_model: dict[str, tiktoken.Encoding] = {}

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR) -> Tokenizer:
        return cls({name: load_encoding(name, data_dir) for name in _ENCODINGS})

    def encoding(self, model: str) -> tiktoken.Encoding:
        enc = self._by_model.get(model)
        if enc is None:
            if len(self._by_model) > 4096:  # client-chosen names must not grow this forever
                self._by_model.clear()
            enc = self._by_model[model] = self._encodings[encoding_name_for(model)]
        return enc

    def count(self, model: str, text: str) -> int:
        return len(self.encoding(model).encode_ordinary(text)) if text else 0

    def truncate(self, model: str, text: str, max_tokens: int | None) -> tuple[str, int, bool]:
        """(text cut to at most max_tokens tokens, its token count, whether it was cut)."""
        enc = self.encoding(model)
        ids = enc.encode_ordinary(text)
        if max_tokens is None or len(ids) <= max_tokens:
            return text, len(ids), False
        return enc.decode(ids[:max_tokens]), max_tokens, True

    def count_chat(self, model: str, messages: Iterable[Any], tools: Any = None) -> int:
        """Prompt tokens of a chat request, the way OpenAI's cookbook counts them."""
        enc = self.encoding(model)
        total = _REPLY_PRIMING
        for message in messages:
            total += _TOKENS_PER_MESSAGE
            if not isinstance(message, dict):
                continue
            for key, value in message.items():
                total += sum(len(enc.encode_ordinary(text)) for text in _texts(value))
                if key == "name":
                    total += _TOKENS_PER_NAME
        if tools:
            # Tool definitions reach the model in a format OpenAI does not publish; their JSON is
            # a close, slightly high estimate.
            total += len(enc.encode_ordinary(orjson.dumps(tools).decode()))
        return total

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
            if value and all(isinstance(v, int) for v in value):
                return len(value)
            return sum(self.count_inputs(model, v) for v in value)
        return 0


def _texts(value: Any) -> Iterable[str]:
    """The text inside a message field: a string, content parts, or tool calls."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    yield part["text"]
                function = part.get("function")
                if isinstance(function, dict):
                    yield from (v for v in (function.get("name"), function.get("arguments"))
                                if isinstance(v, str))
    elif isinstance(value, dict):  # e.g. a legacy function_call
        yield from (v for v in value.values() if isinstance(v, str))
