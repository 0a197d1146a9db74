"""OpenAI's JSON objects as the typed gateway messages, and back, losing nothing.

A field the proto knows is set typed; any other goes, as it came, into the `extra_fields` Struct
of the object it was found in (the answer, a choice, a message or delta, a tool call, the usage),
so a field OpenAI adds tomorrow reaches typed clients the day it ships and moves to its own typed
field once the proto learns it. A Struct rather than a copy of the whole JSON: no answer is sent
twice, and the typed fields stay the one place to read what they hold.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from switchboard_common.errors import UpstreamError

EXTRA = "extra_fields"
M = TypeVar("M", bound=Message)


def to_message(obj: dict[str, Any], cls: type[M]) -> M:
    """`obj` as a `cls`, its unknown fields in `extra_fields`."""
    message = cls()
    try:
        json_format.ParseDict(_split(obj, _descriptor(message)), message)
    except json_format.ParseError as exc:
        raise UpstreamError(f"The provider's answer does not fit {cls.DESCRIPTOR.name}: {exc}",
                            code="invalid_upstream_response") from None
    return message


def to_json(message: Message) -> dict[str, Any]:
    """A message as OpenAI's JSON object, every `extra_fields` merged back where it was."""
    return _merge(json_format.MessageToDict(message, preserving_proto_field_name=True),
                  _descriptor(message))


def _merge(obj: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    fields = _fields(descriptor)
    extra = obj.pop(EXTRA, None)
    for key, value in obj.items():
        nested = fields.get(key)
        if nested is not None:
            if isinstance(value, dict):
                obj[key] = _merge(value, nested)
            elif isinstance(value, list):
                obj[key] = [_merge(v, nested) if isinstance(v, dict) else v for v in value]
    if isinstance(extra, dict):
        obj.update(extra)
    return obj


def _split(obj: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    fields = _fields(descriptor)
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in fields:
            extra[key] = value
            continue
        nested = fields[key]
        if nested is not None:
            if isinstance(value, dict):
                value = _split(value, nested)
            elif isinstance(value, list):
                value = [_split(v, nested) if isinstance(v, dict) else v for v in value]
        out[key] = value
    if extra:
        if EXTRA not in fields:
            raise UpstreamError(f"The provider's answer has fields {descriptor.name} cannot carry: "
                                f"{', '.join(sorted(extra))}", code="invalid_upstream_response")
        out[EXTRA] = extra
    return out


def _descriptor(message: Message) -> Descriptor:
    return cast(Descriptor, message.DESCRIPTOR)  # the stubs say "or upb's": the same API


@functools.cache
def _fields(descriptor: Descriptor) -> dict[str, Descriptor | None]:
    """Each field's name, with the descriptor of our own message it holds (None for scalars,
    maps and the well-known types, which json_format reads as JSON already)."""
    out: dict[str, Descriptor | None] = {}
    for field in descriptor.fields:
        nested = field.message_type
        if nested is not None and (nested.GetOptions().map_entry
                                   or nested.full_name.startswith("google.protobuf.")):
            nested = None
        out[field.name] = nested
    return out
