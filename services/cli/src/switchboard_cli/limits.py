"""Rate-limit options shared by keys and tenants (--rpm, --tpm, --tpd, --parallel) and their display."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from switchboard_cli.output import NONE, number

F = TypeVar("F", bound=Callable[..., Any])

# (flag, the API's field in rate_limits, what it counts)
FIELDS = (
    ("rpm", "requests_per_minute", "requests per UTC minute"),
    ("tpm", "tokens_per_minute", "tokens per UTC minute"),
    ("tpd", "tokens_per_day", "tokens per UTC day"),
    ("parallel", "max_parallel_requests", "requests at once, across every router replica"),
)


def options(*, removable: bool) -> Callable[[F], F]:
    """The four limit options; in an update, 0 removes a limit (the API's rule)."""
    def decorate(command: F) -> F:
        for flag, field, what in reversed(FIELDS):
            command = click.option(
                f"--{flag}", field, type=click.IntRange(min=0 if removable else 1), metavar="N",
                help=f"At most N {what}" + ("; 0 removes the limit." if removable else "."))(command)
        return command
    return decorate


def take(values: dict[str, Any]) -> dict[str, int]:
    """The limits given on the command line, as the API's `rate_limits` object; removed from `values`."""
    given = {field: values.pop(field) for _flag, field, _what in FIELDS}
    return {field: value for field, value in given.items() if value is not None}


def describe(limits: dict[str, Any] | None) -> str:
    """`rpm 60, tpm 100,000, tpd 2,000,000, parallel 8`, or `-` for none."""
    limits = limits or {}
    parts = [f"{flag} {number(limits[field])}" for flag, field, _what in FIELDS if field in limits]
    return ", ".join(parts) or NONE
