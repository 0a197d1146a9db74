"""Billing's REST answers: a typed response as JSON, with the proto's field names, 64-bit
integers as JSON numbers (the transcoder prints them as strings), and beside every
`<name>_micros_usd` the same amount in dollars as `<name>_usd`, for display: the micro-dollars
stay the exact value."""

from __future__ import annotations

from typing import Any

import orjson
from google.api import httpbody_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

MICROS_SUFFIX = "_micros_usd"


def as_dict(message: Message) -> dict[str, Any]:
    data = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True,
                                     unquote_int64_if_possible=True)
    return with_dollars(data)


def with_dollars(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out[key] = with_dollars(value)
            if key.endswith(MICROS_SUFFIX) and isinstance(value, int):
                out[key[: -len(MICROS_SUFFIX)] + "_usd"] = dollars(value)
        return out
    if isinstance(node, list):
        return [with_dollars(item) for item in node]
    return node


def dollars(micros: int) -> float:
    # Exact to the micro-dollar for any amount below $9 billion (15 significant digits).
    return micros / 1_000_000


def http_body(message: Message) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type="application/json",
                                 data=orjson.dumps(as_dict(message)))
