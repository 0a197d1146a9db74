"""Argument types the commands share: durations (30d, 1h30m), expiries, model lists, KEY=VALUE."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
_PART = re.compile(r"(\d+)([smhdw])")
DURATION_HELP = "a number with a unit: 30s, 15m, 12h, 30d, 2w, or combined as 1h30m"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the API's "no expiry" in an update


def parse_duration(text: str) -> int:
    """Seconds in `text` ("30d", "1h30m"); ValueError with what is accepted otherwise."""
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"{text!r} is not a duration: use {DURATION_HELP}")
    return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@dataclass(frozen=True)
class Expiry:
    """When a key stops working: after `in_seconds`, at `at`, or never (both None)."""

    in_seconds: int | None = None
    at: datetime | None = None

    def body(self) -> dict[str, Any]:
        if self.in_seconds is not None:
            return {"expires_in_seconds": self.in_seconds}
        return {"expires_at": rfc3339(self.at or EPOCH)}


class ExpiryType(click.ParamType):
    """A duration from now, a date or time (UTC unless it names an offset), or `never` (updates)."""

    name = "expiry"

    def __init__(self, *, allow_never: bool) -> None:
        self.allow_never = allow_never

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Expiry:
        if isinstance(value, Expiry):
            return value
        text = str(value).strip()
        if text.lower() == "never":
            if not self.allow_never:
                self.fail("a new key has no expiry unless one is given: leave --expires out", param, ctx)
            return Expiry()
        try:
            return Expiry(in_seconds=parse_duration(text))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            never = ", or never to remove the expiry" if self.allow_never else ""
            self.fail(f"{text!r} is neither a duration nor a date: use {DURATION_HELP}, "
                      f"or a date or time such as 2027-01-31 or 2027-01-31T12:00:00Z{never}", param, ctx)
        return Expiry(at=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def split_models(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """--models given several times, or once with commas: one list, order kept."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


class KeyValue(click.ParamType):
    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        name, sep, text = str(value).partition("=")
        if not sep or not name:
            self.fail(f"{value!r} is not KEY=VALUE (e.g. team=search)", param, ctx)
        return name, text
