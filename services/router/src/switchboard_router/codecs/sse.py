"""Server-sent events, the framing every provider's stream and our own SSE answers share: pure bytes.

Events are split as the WHATWG spec says (lines end in \\n, \\r\\n or \\r; a blank line ends an
event; `data:` lines join with \\n; `event:` names the event, which Anthropic's format uses; lines
starting with `:` are comments). https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class SseEvent:
    raw: bytes  # the event's lines (\n-separated), without the blank line that ends it
    data: bytes | None  # the joined `data:` lines; None for an event without any (a comment)
    event: str | None = None  # the `event:` name, when the event has one


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """A usage chunk a relay found and parsed in the bytes it forwarded, handed on so the cost
    is put into it without finding and parsing it again (costs.with_cost)."""

    within: bytes  # the forwarded bytes it is in (the same object: its place holds in no other)
    start: int  # the event's span in `within`, its blank line left out
    end: int
    chunk: dict[str, Any]  # its JSON, parsed; the relay keeps no use of it
    event: str | None  # its `event:` name, if any


def split_events(buffer: bytes) -> tuple[list[SseEvent], bytes]:
    """The complete events in `buffer` and the incomplete rest, to prepend to the next read."""
    tail = b""
    if b"\r" in buffer:
        if buffer.endswith(b"\r"):  # its \n may come in the next read
            buffer, tail = buffer[:-1], b"\r"
        buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    cut = buffer.rfind(b"\n\n")
    if cut < 0:
        return [], buffer + tail
    events = [parse(block) for block in buffer[:cut].split(b"\n\n")]
    return [e for e in events if e is not None], buffer[cut + 2:] + tail


def encode(data: bytes, event: str | None = None) -> bytes:
    """One event carrying `data` (which must not hold a newline, as compact JSON does not)."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"


def find_all(data: bytes, mark: bytes) -> list[int]:
    """Where `mark` occurs in `data` (a search in C; few marks occur in a stream)."""
    out: list[int] = []
    at = data.find(mark)
    while at >= 0:
        out.append(at)
        at = data.find(mark, at + 1)
    return out


def spans_at(data: bytes, places: list[int]) -> list[tuple[int, int]]:
    """The (start, end) of each complete event of `data` (\\n-separated, no \\r) holding one of
    `places` (sorted), in order and each once, its blank line left out: the few events a relay
    must read, found without splitting the many it forwards as they are."""
    spans: list[tuple[int, int]] = []
    end = -1
    for at in places:
        if at < end:
            continue  # in the event already found
        start = data.rfind(b"\n\n", 0, at)
        end = data.find(b"\n\n", at)
        if end < 0:
            break  # in the incomplete rest
        spans.append((0 if start < 0 else start + 2, end))
    return spans


class SseDecoder:
    """Splits a byte stream into events, read by read, holding back the incomplete last one."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, read: bytes) -> list[SseEvent]:
        events, self._rest = split_events(self._rest + read if self._rest else read)
        return events

    def close(self) -> list[SseEvent]:
        """At the end of the stream: an unterminated last event counts as complete."""
        rest, self._rest = self._rest, b""
        return split_events(rest + b"\n\n")[0] if rest.strip() else []


def parse(block: bytes) -> SseEvent | None:
    """One event's lines (without the blank line that ends it); None for blank lines only."""
    block = block.strip(b"\n")
    if not block:
        return None
    data: list[bytes] = []
    name: str | None = None
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return SseEvent(raw=block, data=b"\n".join(data) if data else None, event=name)
