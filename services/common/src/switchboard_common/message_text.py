"""The text inside an OpenAI chat message's fields, for whatever counts or searches it (the
router's token counts and budget estimates, memory's history and search)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def texts(value: Any) -> Iterable[str]:
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
