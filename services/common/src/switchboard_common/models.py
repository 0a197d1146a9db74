"""Allowed-model patterns: an exact model name, or a prefix ending in `*` ("gpt-4*", "anthropic/*",
"*" for every model). A `*` anywhere else would silently match nothing, so it is refused.

One matcher for auth (which checks the patterns an admin sets) and the router (which checks a
cached verdict's patterns on every request), so the two can never disagree."""

from __future__ import annotations

from collections.abc import Iterable

MAX_PATTERN_CHARS = 200


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a valid allowed-model entry, or None when it is."""
    if not pattern or pattern != pattern.strip():
        return "an empty entry, or one with surrounding spaces"
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    if "*" in pattern[:-1]:
        return "a '*' that is not the last character (only a trailing '*' is a wildcard)"
    return None


def model_allowed(patterns: Iterable[str], model: str) -> bool:
    """True when `model` is empty (the key alone is checked), no patterns are set, or one
    matches."""
    if not model:
        return True
    patterns = tuple(patterns)
    if not patterns:
        return True
    for pattern in patterns:
        if pattern.endswith("*"):
            if model.startswith(pattern[:-1]):
                return True
        elif pattern == model:
            return True
    return False
