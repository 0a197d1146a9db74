"""Compiled patterns that know where a match could still be forming at the end of a text.

The `regex` module reports a partial match (one cut short by the end of the string), which is
exactly what a stream scanner must hold back: "my card is 4111 11" holds "4111 11", "write to
john" holds "john", "hello. " holds nothing. Every pattern also runs with a timeout, so an
operator's regex cannot stall the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import regex

# An operator's pattern gets this long per text before it counts as a match (fail closed).
TIMEOUT_SECONDS = 0.05


class PatternTimeout(Exception):
    """A pattern ran past TIMEOUT_SECONDS on one text."""


class Patterns:
    """Several compiled patterns searched together. A pattern may look further back for a
    match still forming than `hold_from`'s default (a private key block runs to kilobytes)."""

    def __init__(self, compiled: Iterable[regex.Pattern],
                 lookbacks: dict[int, int] | None = None) -> None:
        self._compiled = tuple(compiled)
        self._lookbacks = lookbacks or {}  # pattern index -> characters

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def finditer(self, text: str) -> Iterator[tuple[int, regex.Match]]:
        """(pattern index, match) for every complete match; raises PatternTimeout."""
        try:
            for index, pattern in enumerate(self._compiled):
                for match in pattern.finditer(text, timeout=TIMEOUT_SECONDS):
                    if match.end() > match.start():
                        yield index, match
        except TimeoutError:
            raise PatternTimeout() from None

    def hold_from(self, text: str, lookback: int) -> int:
        """The start of the earliest match still forming among the last `lookback` characters,
        or len(text) when none is: a partial match cut by the end ("4111 11"), or a complete one
        that more text could extend ("4111 1111 1111 " before the last group arrives)."""
        end = len(text)
        start = max(0, end - lookback)
        hold = end
        try:
            for index, pattern in enumerate(self._compiled):
                begin = max(0, end - self._lookbacks.get(index, lookback))
                for match in pattern.finditer(text, begin, partial=True, timeout=TIMEOUT_SECONDS):
                    if match.start() >= hold:
                        continue
                    if match.partial or pattern.fullmatch(text, match.start(), partial=True,
                                                          timeout=TIMEOUT_SECONDS):
                        hold = match.start()
        except TimeoutError:
            return start  # unsure: hold everything it looked at
        return hold


def compile_all(sources: Iterable[str], *, ignore_case: bool = False) -> Patterns:
    """Raises regex.error for a pattern that does not compile."""
    flags = regex.IGNORECASE if ignore_case else 0
    return Patterns(regex.compile(source, flags) for source in sources)


def keyword_source(keywords: Iterable[str]) -> str:
    """One alternation matching any keyword as a whole word (where it starts or ends with a
    word character), longest first so a longer keyword wins over its prefix."""
    parts = []
    for word in sorted(set(keywords), key=lambda w: (-len(w), w)):
        escaped = regex.escape(word.strip(), special_only=True)
        left = r"\b" if word.strip()[:1].isalnum() else ""
        right = r"\b" if word.strip()[-1:].isalnum() else ""
        parts.append(f"{left}{escaped}{right}")
    return "|".join(parts)
