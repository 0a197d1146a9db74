"""Dollar amounts from a client (JSON numbers or strings) as exact integer micro-dollars: one
reading for every API that takes dollars (auth's key budget fields, billing's budget bodies)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from switchboard_common.errors import InvalidRequest

_MICROS = Decimal(1_000_000)


def micros(value: Any, param: str) -> int:
    """`value` dollars in micro-dollars; a 400 naming `param` unless it is a non-negative amount
    with at most 6 decimals that fits an int64."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise InvalidRequest(f"Invalid type for '{param}': expected a number of dollars.",
                             param=param, code="invalid_type")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidRequest(f"Invalid '{param}': not a number of dollars.", param=param,
                             code="invalid_type") from None
    scaled = amount * _MICROS
    if not amount.is_finite() or amount < 0 or scaled != scaled.to_integral_value():
        raise InvalidRequest(f"Invalid '{param}': a non-negative amount of dollars with at most "
                             "6 decimals.", param=param, code="invalid_value")
    if scaled >= 2**63:
        raise InvalidRequest(f"Invalid '{param}': too large.", param=param, code="invalid_value")
    return int(scaled)
