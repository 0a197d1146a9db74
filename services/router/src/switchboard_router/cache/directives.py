"""What a request asks of the cache: `x-switchboard-cache: on|off` and `Cache-Control`'s
`no-cache` (answer fresh, store it) and `no-store` (neither read nor store), read from the call's
metadata once; nothing here runs unless one of those headers was sent."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard_common.errors import InvalidRequest

CACHE_HEADER = "x-switchboard-cache"
CACHE_CONTROL = "cache-control"
_VALUES = ("on", "off")


@dataclass(frozen=True, slots=True)
class Directives:
    read: bool
    write: bool


def directives(switch: str | None, cache_control: str | None, default: bool) -> Directives | None:
    """The cache's part in this request, or None when it takes none. `switch` is the
    x-switchboard-cache value as sent, `default` the model group's `cache` setting."""
    if switch is not None:
        value = switch.strip().lower()
        if value not in _VALUES:
            raise InvalidRequest(
                f"Invalid value for the {CACHE_HEADER} header: {switch[:40]!r} (use 'on' or "
                "'off').", param=CACHE_HEADER, code="invalid_header")
        if value == "off":
            return None
    elif not default:
        return None
    if cache_control is None:
        return Directives(read=True, write=True)
    tokens = {t.strip().split("=", 1)[0].lower() for t in cache_control.split(",")}
    if "no-store" in tokens:
        return None
    return Directives(read="no-cache" not in tokens, write=True)
