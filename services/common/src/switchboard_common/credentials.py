"""The caller's API key, read from gRPC metadata (lower-case HTTP headers through the edge)."""

from __future__ import annotations

from collections.abc import Iterable

# Anthropic- and Azure-style clients send their key in these instead of Authorization.
KEY_HEADERS = ("x-api-key", "api-key")


def bearer_key(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The key from `authorization: Bearer <key>`, else from `x-api-key` or `api-key`; empty when
    there is none. A Bearer key wins wherever it stands; another scheme (Basic) is no key."""
    other = ""
    for name, value in metadata or ():
        if isinstance(value, bytes):  # only `-bin` metadata is bytes, and no key travels there
            continue
        if name == "authorization":
            scheme, _, token = value.strip().partition(" ")
            token = token.strip()
            if token and scheme.lower() == "bearer":
                return token
        elif not other and name in KEY_HEADERS:
            other = value.strip()
    return other
