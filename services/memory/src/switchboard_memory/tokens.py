"""Token counts for budgets, with the target model's tiktoken encoding (switchboard_common.bpe):
a message costs its text plus OpenAI's per-message overhead, as the router counts usage."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tiktoken

from switchboard_common.bpe import ENCODINGS, FALLBACK, encoding_name_for, load_encoding
from switchboard_common.message_text import texts

TOKENS_PER_MESSAGE = 3  # OpenAI cookbook, "How to count tokens with tiktoken"
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
_MAX_CACHED_MODELS = 4096


class TokenCounter:
    """Build it once per process with `TokenCounter.load()` (about a second)."""

    def __init__(self, encodings: dict[str, tiktoken.Encoding]) -> None:
        self._encodings = encodings
        self._by_model: dict[str, tiktoken.Encoding] = {}

    @classmethod
    def load(cls) -> TokenCounter:
        return cls({name: load_encoding(name) for name in ENCODINGS})

    def encoding(self, model: str = "") -> tiktoken.Encoding:
        enc = self._by_model.get(model)
        if enc is None:
            if len(self._by_model) > _MAX_CACHED_MODELS:  # client-chosen names: bounded
                self._by_model.clear()
            name = encoding_name_for(model) if model else FALLBACK
            enc = self._by_model[model] = self._encodings[name]
        return enc

    def count(self, text: str, model: str = "") -> int:
        return len(self.encoding(model).encode_ordinary(text)) if text else 0

    def message(self, message: Any, model: str = "") -> int:
        total = TOKENS_PER_MESSAGE
        if isinstance(message, dict):
            for key, value in message.items():
                total += sum(self.count(text, model) for text in texts(value))
                if key == "name":
                    total += TOKENS_PER_NAME
        return total

    def messages(self, messages: Iterable[Any], model: str = "") -> int:
        return REPLY_PRIMING + sum(self.message(m, model) for m in messages)


def message_text(message: Any) -> str:
    """What a message says, for search: its content and tool calls' names and arguments."""
    if not isinstance(message, dict):
        return ""
    parts = [*texts(message.get("content")), *texts(message.get("tool_calls"))]
    return "\n".join(p for p in parts if p)
