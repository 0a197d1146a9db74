"""Writing redactions into a text: a typed placeholder ("[EMAIL]"), or a numbered token
("[EMAIL_1]") whose original the answer gets back where the operator opts in."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from switchboard_guardrails.domain import Match

TOKEN = re.compile(r"\[[A-Z][A-Z_]*_\d+\]")


class Tokens:
    """One request's reversible tokens: the same original gets the same token throughout."""

    def __init__(self) -> None:
        self._by_original: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self.restorations: dict[str, str] = {}  # token -> original

    def token(self, placeholder: str, original: str) -> str:
        key = (placeholder, original)
        token = self._by_original.get(key)
        if token is None:
            base = placeholder.strip("[]")
            self._counts[base] = self._counts.get(base, 0) + 1
            token = f"[{base}_{self._counts[base]}]"
            self._by_original[key] = token
            self.restorations[token] = original
        return token


class Redaction(NamedTuple):
    match: Match
    reversible: bool = False  # a numbered token rather than the placeholder


def merged(redactions: Sequence[Redaction]) -> list[Redaction]:
    """Non-overlapping spans, earliest first; of two that overlap, the one starting first grows
    to cover both and keeps its placeholder."""
    out: list[Redaction] = []
    for item in sorted(redactions, key=lambda r: (r.match.start, -r.match.end)):
        if out and item.match.start < out[-1].match.end:
            last = out[-1]
            if item.match.end > last.match.end:
                m = last.match
                out[-1] = Redaction(Match(m.check, m.start, item.match.end, m.entity, m.score,
                                          m.placeholder), last.reversible)
            continue
        out.append(item)
    return out


def redact(text: str, redactions: Sequence[Redaction], tokens: Tokens | None = None) -> str:
    """`text` with each span replaced by its placeholder, or by a token when it is reversible
    and `tokens` is given."""
    pieces = []
    cursor = 0
    for match, reversible in merged(redactions):
        pieces.append(text[cursor:match.start])
        placeholder = match.placeholder or "[REDACTED]"
        if tokens is not None and reversible:
            pieces.append(tokens.token(placeholder, text[match.start:match.end]))
        else:
            pieces.append(placeholder)
        cursor = match.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def restore(text: str, restorations: Mapping[str, str]) -> str:
    if not restorations or "[" not in text:
        return text
    return TOKEN.sub(lambda m: restorations.get(m.group(), m.group()), text)
