"""The dollar spellings of a key's budget in REST bodies, turned into the typed micro-dollar
fields before the body is read strictly: AILB's `monthly_quota_dollars` (seeds/002) and AI
Gateway's `cost_limit_daily` / `cost_limit_monthly` (seeds/004). JSON numbers are read as
written (Decimal, never float), with at most 6 decimals, so $0.1 is exactly 100,000 micro-dollars."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from switchboard_common.dollars import micros
from switchboard_common.errors import InvalidRequest

DOLLAR_FIELDS = {"monthly_quota_dollars": "monthly_budget_micros_usd",
                 "cost_limit_daily": "daily_budget_micros_usd",
                 "cost_limit_monthly": "monthly_budget_micros_usd"}


def dollars_to_micros(data: bytes) -> bytes:
    """The body with each dollar spelling replaced by its micro-dollar field (an int64 as a
    decimal string, as proto3 JSON writes it); any other body is returned as it came."""
    if not any(name.encode() in data for name in DOLLAR_FIELDS):
        return data
    try:
        body = json.loads(data, parse_float=Decimal)
    except ValueError:
        return data  # the strict reader says what is wrong with it
    if not isinstance(body, dict):
        return data
    for alias, field in DOLLAR_FIELDS.items():
        if alias not in body:
            continue
        if field in body:
            raise InvalidRequest(f"Give '{alias}' or '{field}', not both: they are the same "
                                 "limit.", param=alias, code="invalid_value")
        value = body.pop(alias)
        if value is not None:
            body[field] = str(micros(value, alias))
    return orjson.dumps(body, default=_number)



def _number(value: Any) -> Any:
    if isinstance(value, Decimal):  # another field's number: as written
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(type(value).__name__)
