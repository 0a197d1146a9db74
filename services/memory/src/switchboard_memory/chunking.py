"""Documents into chunks of at most N tokens with an overlap, cut where the text has seams.

Markdown headings start sections, and every chunk of a section carries its heading trail
("Guide > Install"), so a chunk deep in a section still says what it is about. Within a section
the text is tokenized once, segment by segment, so that paragraph and sentence ends fall on token
boundaries; a chunk ends at the last such seam in its final quarter when there is one (else at
the token limit), and the next chunk starts at most `overlap` tokens before that end (at a seam when one is there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tiktoken

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SEAM = re.compile(r"\n\s*\n|(?<=[.!?])\s+")


@dataclass(frozen=True)
class Piece:
    text: str
    tokens: int


def chunk(text: str, enc: tiktoken.Encoding, max_tokens: int, overlap: int) -> list[Piece]:
    pieces: list[Piece] = []
    for trail, body in _sections(text):
        prefix = f"{' > '.join(trail)}\n\n" if trail else ""
        budget = max(max_tokens - len(enc.encode_ordinary(prefix)), max_tokens // 2)
        for part in _windows(body, enc, budget, min(overlap, budget // 2)):
            full = prefix + part
            pieces.append(Piece(full, len(enc.encode_ordinary(full))))
    return pieces


def _sections(text: str) -> list[tuple[list[str], str]]:
    """(heading trail, body) per markdown section; plain text is one section without a trail."""
    out: list[tuple[list[str], str]] = []
    trail: list[tuple[int, str]] = []
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            out.append(([t for _, t in trail], body))
        lines.clear()

    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level = len(match.group(1))
        trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, match.group(2))]
    flush()
    return out


def _windows(body: str, enc: tiktoken.Encoding, max_tokens: int, overlap: int) -> list[str]:
    ids, seams = _encode_with_seams(body, enc)
    if len(ids) <= max_tokens:
        return [body]
    out: list[str] = []
    start = 0
    while start < len(ids):
        end = min(start + max_tokens, len(ids))
        if end < len(ids):
            good = [s for s in seams if start + max_tokens * 3 // 4 <= s <= end]
            end = good[-1] if good else end
        out.append(enc.decode(ids[start:end]).strip())
        if end >= len(ids):
            break
        # The overlap starts at a seam too when one lies within it.
        back = [s for s in seams if max(end - overlap, start + 1) <= s < end]
        start = back[0] if back else max(end - overlap, start + 1)
    return [w for w in out if w]


def _encode_with_seams(body: str, enc: tiktoken.Encoding) -> tuple[list[int], list[int]]:
    """The body's tokens, encoded segment by segment between paragraph and sentence ends (their
    concatenation decodes to the body exactly), and the token offset of every seam."""
    ids: list[int] = []
    seams: list[int] = []
    position = 0
    for match in _SEAM.finditer(body):
        ids += enc.encode_ordinary(body[position:match.end()])
        position = match.end()
        seams.append(len(ids))
    ids += enc.encode_ordinary(body[position:])
    return ids, seams
