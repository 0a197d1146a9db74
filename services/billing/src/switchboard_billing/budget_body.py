"""The REST body of SetBudget: read strictly against SetBudgetRequest (an unknown field or a wrong
type is a 400 naming it), after the dollar spellings AILB and AI Gateway send are turned into
exact micro-dollars: `monthly_limit_dollars` (AILB), `daily_limit_dollars`, and `limit_dollars`
with `period`. JSON numbers are read as written (Decimal, never float), at most 6 decimals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
from switchboard.billing.v1 import billing_pb2

from switchboard_common import strict_json
from switchboard_common.dollars import micros
from switchboard_common.errors import InvalidRequest

DOLLAR_FIELDS = {"monthly_limit_dollars": "monthly_limit_micros_usd",
                 "daily_limit_dollars": "daily_limit_micros_usd",
                 "limit_dollars": "limit_micros_usd"}


def parse(data: bytes) -> billing_pb2.SetBudgetRequest:
    body = _load(data)
    for alias, field in DOLLAR_FIELDS.items():
        if alias not in body:
            continue
        if field in body:
            raise InvalidRequest(f"Give '{alias}' or '{field}', not both.", param=alias,
                                 code="invalid_value")
        value = body.pop(alias)
        if value is not None:
            body[field] = str(micros(value, alias))  # int64 as a decimal string, as proto3 JSON
    return strict_json.parse(orjson.dumps(body), billing_pb2.SetBudgetRequest)



def _load(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data, parse_float=Decimal) if data.strip() else {}
    except ValueError:
        raise InvalidRequest("We could not parse the JSON body of your request: it is not valid "
                             "JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return _no_decimals_elsewhere(body)


def _no_decimals_elsewhere(body: dict[str, Any]) -> dict[str, Any]:
    # Only the dollar fields keep their Decimal; orjson writes every other number as it came.
    return {k: (v if k in DOLLAR_FIELDS or not isinstance(v, Decimal) else float(v))
            for k, v in body.items()}
