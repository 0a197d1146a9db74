"""One cached answer: the bytes the first client received (a JSON body, or the whole SSE stream
with its usage chunk and [DONE]) and the provider's token counts, which a hit records again at
cost 0. Serialised as one JSON header line and the raw bytes, for Redis."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from switchboard_router.domain import Tokens


@dataclass(frozen=True, slots=True)
class Entry:
    data: bytes
    stream: bool
    tokens: Tokens
    native: bool = False  # Anthropic's own bytes (a /v1/messages answer passed through as it came)

    def dumps(self) -> bytes:
        t = self.tokens
        head = orjson.dumps({"s": self.stream, "t": [t.prompt, t.completion, t.cached,
                                                     t.cache_write, t.reasoning], "n": self.native})
        return head + b"\n" + self.data


def loads(raw: bytes) -> Entry | None:
    """None for bytes this version cannot read (another writer, a corrupted value): a miss."""
    head, newline, data = raw.partition(b"\n")
    if not newline:
        return None
    try:
        meta = orjson.loads(head)
        return Entry(data=data, stream=bool(meta["s"]), tokens=Tokens(*map(int, meta["t"])),
                     native=bool(meta.get("n", False)))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
