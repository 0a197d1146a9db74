"""Strict JSON bodies for the admin routes: an unknown field or a wrong type is a 400 naming it.

Envoy's JSON transcoder drops unknown fields silently and has no option to refuse them, so every
admin route with a body is bound to a `<Rpc>Json` twin whose request holds the path parameters and
the raw body (`google.api.HttpBody body`). `json_twin` makes that twin: it reads the body into the
typed request with `parse` and calls the typed RPC, which gRPC clients go on calling directly.
Typed RPCs bound with path parameters call `refuse_query_override`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

import grpc
import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from switchboard_common.errors import InvalidRequest, NotSupportedYet

M = TypeVar("M", bound=Message)
F = FieldDescriptor

_INT_RANGES = {
    F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_SINT32: (-2**31, 2**31 - 1),
    F.TYPE_SFIXED32: (-2**31, 2**31 - 1), F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1), F.TYPE_INT64: (-2**63, 2**63 - 1),
    F.TYPE_SINT64: (-2**63, 2**63 - 1), F.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}
# proto3's JSON form writes 64-bit integers as strings (the edge prints them so), so a client may
# send back what it read; 32-bit integers must be JSON numbers.
_STRING_INTS = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
_JSON_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
               list: "an array", dict: "an object", type(None): "null"}
_TIMES: dict[str, tuple[type[Timestamp] | type[Duration], str]] = {
    "google.protobuf.Timestamp": (Timestamp, "an RFC 3339 time such as 2030-01-31T12:00:00Z"),
    "google.protobuf.Duration": (Duration, "a duration such as 3600s"),
}
_ANY_JSON = {"google.protobuf.Value": None, "google.protobuf.Struct": dict,
             "google.protobuf.ListValue": list}


def parse(data: bytes, message_cls: type[M], *, from_path: dict[str, Any] | None = None,
          not_yet: Mapping[str, str] | None = None) -> M:
    """The typed request read from a JSON body; `from_path` fields come from the URL only, and a
    `not_yet` field (one the resource will take once its feature is built) is refused saying so."""
    body = _load(data)
    for name, reason in (not_yet or {}).items():
        if name in body:
            raise NotSupportedYet(name, reason)
    descriptor = cast(Descriptor, message_cls.DESCRIPTOR)  # the stubs say "or upb's": the same API
    for name in from_path or {}:
        if _given(body, descriptor.fields_by_name[name]):
            raise InvalidRequest(f"'{name}' is taken from the path; leave it out of the body.",
                                 param=name, code="unknown_parameter")
    _check_message(body, descriptor, "")
    message = message_cls()
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:  # what the checks above do not catch, e.g. bad base64
        raise InvalidRequest(f"Invalid request body: {exc}", code="invalid_value") from None
    for name, value in (from_path or {}).items():
        setattr(message, name, value)
    return message


# Any: the generated servicer base types each method with its own request and response.
Handler = Any


def json_twin(typed_rpc: str, request_cls: type[Message], *,
              not_yet: Mapping[str, str] | None = None,
              prepare: Callable[[bytes], bytes] | None = None) -> Handler:
    """A servicer method for `<typed_rpc>Json`: the strict body plus the path's fields, then the
    typed RPC itself, so both bindings share one implementation. `prepare` may first turn the
    body's other spellings of a field (dollars for micro-dollars) into the typed one."""

    async def twin(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Message:
        refuse_query(context)
        path = {f.name: getattr(request, f.name) for f in request.DESCRIPTOR.fields
                if f.name != "body"}
        data = request.body.data if prepare is None else prepare(request.body.data)
        typed = parse(data, request_cls, from_path=path, not_yet=not_yet)
        return await getattr(self, typed_rpc)(typed, context)

    twin.__name__ = twin.__qualname__ = f"{typed_rpc}Json"
    return twin


def _load(data: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(data) if data.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest("We could not parse the JSON body of your request: it is not valid "
                             "JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def refuse_query_override(context: grpc.aio.ServicerContext, *path_fields: str) -> None:
    """For a typed RPC bound with path parameters: the transcoder lets a query parameter of the
    same name replace the path's value (`GET /api/keys/key_a?key_id=key_b` reads key_b), so a
    path field named in the query is refused."""
    for name in _query_names(context):
        if name in path_fields or _snake(name) in path_fields:
            raise InvalidRequest(f"'{_snake(name)}' is taken from the path; leave it out of the "
                                 "query.", param=_snake(name), code="unknown_parameter")


def refuse_query(context: grpc.aio.ServicerContext) -> None:
    """For a JSON twin: no query parameter at all. The edge refuses unknown ones, but one that
    names a field of the twin's request (a path parameter, or `body.*`) would pass it and
    override or vanish, so none is accepted here."""
    if names := _query_names(context):
        raise InvalidRequest("This route takes no query parameters; send the fields in the JSON "
                             "body.", param=names[0], code="unknown_parameter")


def _query_names(context: grpc.aio.ServicerContext) -> list[str]:
    for key, value in context.invocation_metadata() or ():
        if key == "x-envoy-original-path" and isinstance(value, str):  # set by the edge's transcoder
            return [name for name, _ in parse_qsl(value.partition("?")[2], keep_blank_values=True)]
    return []


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _given(body: dict[str, Any], field: FieldDescriptor) -> bool:
    return body.get(field.name) is not None or body.get(field.json_name) is not None


def _check_message(obj: Any, descriptor: Descriptor, path: str) -> None:
    if not isinstance(obj, dict):
        raise _wrong_type(path, "an object", obj)
    by_name = {**{f.json_name: f for f in descriptor.fields},
               **{f.name: f for f in descriptor.fields}}
    oneofs: dict[str, str] = {}
    for key, value in obj.items():
        field = by_name.get(key)
        where = f"{path}.{key}" if path else key
        if field is None:
            raise _unknown(where, key, descriptor)
        if value is None:  # proto3 JSON: null is "not given" (a Value holds it as null_value)
            continue
        if field.containing_oneof is not None:
            other = oneofs.setdefault(field.containing_oneof.name, where)
            if other != where:
                raise InvalidRequest(f"Set only one of '{other}' and '{where}'.", param=where,
                                     code="invalid_value")
        _check_field(value, field, where)


def _check_field(value: Any, field: FieldDescriptor, path: str) -> None:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, dict):
            raise _wrong_type(path, "an object", value)
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        for key, item in value.items():
            if key_field.type != F.TYPE_STRING:
                _check_map_key(key, key_field, f"{path}.{key}")
            _check_single(item, value_field, f"{path}.{key}")
    elif field.is_repeated:
        if not isinstance(value, list):
            raise _wrong_type(path, "an array", value)
        for index, item in enumerate(value):
            _check_single(item, field, f"{path}[{index}]")
    else:
        _check_single(value, field, path)


def _check_single(value: Any, field: FieldDescriptor, path: str) -> None:
    if field.type == F.TYPE_MESSAGE:
        assert field.message_type is not None, "a message field has its message type"
        _check_embedded(value, field.message_type, path)
    elif field.type == F.TYPE_ENUM:
        _check_enum(value, field, path)
    else:
        _check_scalar(value, field, path)


def _check_embedded(value: Any, descriptor: Descriptor, path: str) -> None:
    name = descriptor.full_name
    if name in _ANY_JSON:
        expected = _ANY_JSON[name]
        if expected is not None and not isinstance(value, expected):
            raise _wrong_type(path, "an object" if expected is dict else "an array", value)
    elif name in _TIMES:
        cls, example = _TIMES[name]
        if not isinstance(value, str):
            raise _wrong_type(path, f"a string ({example})", value)
        try:
            cls().FromJsonString(value)
        except ValueError:
            raise InvalidRequest(f"Invalid '{path}': expected {example}, got '{value[:64]}'.",
                                 param=path, code="invalid_value") from None
    elif name.startswith("google.protobuf.") and name.endswith("Value"):  # Int64Value, ...
        if value is None:
            raise _wrong_type(path, "a value", value)
        _check_scalar(value, descriptor.fields_by_name["value"], path)
    else:
        if value is None:
            raise _wrong_type(path, "an object", value)
        _check_message(value, descriptor, path)


def _check_enum(value: Any, field: FieldDescriptor, path: str) -> None:
    assert field.enum_type is not None, "an enum field has its enum type"
    names = [v.name for v in field.enum_type.values]
    if isinstance(value, str) and value in names:
        return
    numbers = field.enum_type.values_by_number
    if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
        return
    raise InvalidRequest(f"Invalid value for '{path}': {orjson.dumps(value).decode()[:64]}. "
                         f"Supported values are: {', '.join(names)}.", param=path,
                         code="invalid_value")


def _check_scalar(value: Any, field: FieldDescriptor, path: str) -> None:
    kind = field.type
    if kind in _INT_RANGES:
        _check_int(value, kind, path)
    elif kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(path, "a number", value)
    elif kind == F.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _wrong_type(path, "a boolean", value)
    elif not isinstance(value, str):  # string, and bytes as base64
        raise _wrong_type(path, "a string", value)


def _check_int(value: Any, kind: int, path: str) -> None:
    number = value
    if kind in _STRING_INTS and isinstance(value, str):
        try:
            number = int(value, 10)
        except ValueError:
            raise _wrong_type(path, "an integer", value) from None
    elif isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(path, "an integer", value)
    low, high = _INT_RANGES[kind]
    if not low <= number <= high:
        raise InvalidRequest(f"Invalid '{path}': {number} is outside {low}..{high}.", param=path,
                             code="invalid_value")


def _check_map_key(key: str, field: FieldDescriptor, path: str) -> None:
    if field.type == F.TYPE_BOOL:
        ok = key in ("true", "false")
    else:
        try:
            int(key, 10)
            ok = True
        except ValueError:
            ok = False
    if not ok:
        raise InvalidRequest(f"Invalid key '{key[:64]}' in '{path.rsplit('.', 1)[0]}'.", param=path,
                             code="invalid_value")


def _unknown(path: str, key: str, descriptor: Descriptor) -> InvalidRequest:
    known = [f.name for f in descriptor.fields]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(known) if known else "no fields"
    return InvalidRequest(f"Unknown parameter: '{path}'.{hint} This object takes: {listed}.",
                          param=path, code="unknown_parameter")


def _wrong_type(path: str, expected: str, value: Any) -> InvalidRequest:
    got = _JSON_TYPES.get(type(value), "another type")
    where = path or "the request body"
    return InvalidRequest(f"Invalid type for '{where}': expected {expected}, but got {got} "
                          "instead.", param=path or None, code="invalid_type")
