"""Secrets out of logs: anything that looks like a bearer token or an `sk-` key is masked.

Applied to every rendered log line (structlog's and the stdlib's, libraries included) and, as
bytes, to what the local launcher copies from a process's stdout and stderr into its log file,
where grpc-core's own C-level lines land (its hpack trace prints raw metadata). Keys are
Switchboard's (`sk-sb-...`) and most providers' (`sk-...`, `sk-proj-...`, `sk-ant-...`).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"

# A bearer token runs to the next space or quote; a key to the end of its URL-safe characters.
# `\b` keeps "task-1234..." from matching; non-UTF-8 bytes after a key stay, the key does not.
_TEXT = re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+|\b(sk-)[A-Za-z0-9_\-]{6,}")
_BYTES = re.compile(rb"(?i)(\bbearer\s+)[^\s\"',;]+|\b(sk-)[A-Za-z0-9_\-]{6,}")


def _masked(match: re.Match[Any]) -> Any:
    prefix = match.group(1) or match.group(2)
    return prefix + (MASK if isinstance(prefix, str) else MASK.encode())


def redact(text: str) -> str:
    """`text` with every bearer token and `sk-` key masked."""
    # The regex costs ~8 µs a line; this test, true for any line it could change, ~0.3 µs.
    if "sk-" not in text and "bearer" not in text.lower():
        return text
    return _TEXT.sub(_masked, text)


def redact_bytes(data: bytes) -> bytes:
    """The same for raw bytes, which may not be UTF-8 (a key with a stray byte is still a key)."""
    if b"sk-" not in data and b"bearer" not in data.lower():
        return data
    return _BYTES.sub(_masked, data)


def redact_rendered(_logger: object, _method: str, line: Any) -> Any:
    """A structlog processor placed after the renderer: masks secrets in the finished line."""
    return redact(line) if isinstance(line, str) else line
