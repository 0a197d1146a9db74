"""OpenAI's documented request fields, checked the way its API reference describes them.

`openai_fields.json` holds each top-level field's schema as OpenAI's OpenAPI document gives it
(extracted by `python -m tests.fuzz.openai_spec`, refs inlined). This module compiles those schemas
once into small checkers that raise OpenAI's own 400s, naming the param. It reads only what a
validator needs (type, nullable, enum, bounds, items, properties, required, unions) and never
refuses unknown keys: a field the spec does not know is the provider's to judge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from switchboard_common.errors import InvalidRequest, clip

FIELDS_FILE = Path(__file__).with_name("openai_fields.json")
Check = Callable[[Any, str], None]  # (value, its param path); raises InvalidRequest

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int, float), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}
_NAMES = {"string": "a string", "integer": "an integer", "number": "a decimal",
          "boolean": "a boolean", "object": "an object", "array": "an array", "null": "null"}
_GOT = {str: "a string", bool: "a boolean", int: "an integer", float: "a decimal",
        list: "an array", dict: "an object", type(None): "null"}


def documented_fields() -> dict[str, dict[str, Any]]:
    """{endpoint value: {field: schema}} as extracted from OpenAI's spec."""
    return orjson.loads(FIELDS_FILE.read_bytes())["endpoints"]


def got(value: Any) -> str:
    """The JSON type of `value` as OpenAI's messages name it."""
    return _GOT.get(type(value), "another type")


def type_error(at: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{at}': expected {expected}, but got {got(value)} "
                          "instead.", param=at, code="invalid_type")


def value_error(at: str, value: Any, allowed: list[Any]) -> InvalidRequest:
    names = [f"'{v}'" for v in allowed]
    listed = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else \
        ", ".join(names[:-1]) + f", and {names[-1]}"
    return InvalidRequest(f"Invalid value: '{clip(value)}'. Supported values are: {listed}.",
                          param=at, code="invalid_value")


def missing(at: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{at}'.", param=at,
                          code="missing_required_parameter")


class Node:
    """One compiled schema: which JSON types it takes, and the check of a value of those types."""

    __slots__ = ("types", "nullable", "tags", "check", "_py", "_bool", "_whole")

    def __init__(self, types: tuple[str, ...] | None, nullable: bool, tags: dict[str, Any],
                 check: Check) -> None:
        self.types = types  # None: any type
        self.nullable = nullable
        self.tags = tags  # {property: enum values} that tell union branches apart
        self.check = check
        self._py = tuple({py for t in types or () for py in _PY_TYPES[t]})
        self._bool = "boolean" in (types or ())
        # JSON Schema's integer is any number without a fraction (the typed gRPC twin sends 5.0).
        self._whole = "integer" in (types or ()) and "number" not in (types or ())

    def takes(self, value: Any) -> bool:
        if self.types is None or (value is None and self.nullable):
            return True
        if not isinstance(value, self._py):
            return False
        if isinstance(value, bool):
            return self._bool
        return not (self._whole and isinstance(value, float)) or value.is_integer()

    def expected(self) -> str:
        names = [_NAMES[t] for t in self.types or ()]
        return " or ".join(dict.fromkeys(names)) or "a value"


def compile_fields(fields: Mapping[str, Any]) -> dict[str, Check]:
    """{field: check} for top-level fields; each check names the field itself as the param."""
    out: dict[str, Check] = {}
    for name, schema in fields.items():
        node = compile_schema(schema)
        out[name] = _entry(node)
    return out


def _entry(node: Node) -> Check:
    def check(value: Any, at: str) -> None:
        if value is None and node.nullable:
            return
        if not node.takes(value):
            raise type_error(at, node.expected(), value)
        node.check(value, at)
    return check


def compile_schema(schema: Mapping[str, Any]) -> Node:
    branches = schema.get("anyOf") or schema.get("oneOf")
    nullable = bool(schema.get("nullable"))
    if branches:
        return _union([compile_schema(b) for b in branches], nullable)
    kind = schema.get("type")
    types = (kind,) if isinstance(kind, str) else tuple(kind) if kind else None
    if types and "null" in types:  # () left: null and nothing else
        nullable, types = True, tuple(t for t in types if t != "null")
    checks = [c for c in (_enum(schema), _number(schema), _string(schema), _array(schema),
                          _object(schema)) if c is not None]
    return Node(types, nullable, _tags(schema), _all(checks))


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda value, at: None
    if len(checks) == 1:
        return checks[0]

    def check(value: Any, at: str) -> None:
        for c in checks:
            c(value, at)
    return check


def _union(nodes: list[Node], nullable: bool) -> Node:
    """anyOf and oneOf alike: a value passes when some branch takes it (leniently, as clients and
    other providers read "oneOf"); errors come from the branch the value was meant for."""
    nullable = nullable or any(n.nullable for n in nodes)
    nodes = [n for n in nodes if n.types != ()]
    types = None if any(n.types is None for n in nodes) else tuple(
        dict.fromkeys(t for n in nodes for t in n.types or ()))

    def check(value: Any, at: str) -> None:
        if value is None:
            return  # takes() let it in: some branch is nullable
        fits = [n for n in nodes if n.takes(value)]
        if isinstance(value, dict) and len(fits) > 1:
            fits = _by_tag(fits, value, at)
        error: InvalidRequest | None = None
        for n in fits:
            try:
                n.check(value, at)
                return
            except InvalidRequest as exc:
                error = error or exc
        if error is None:
            raise type_error(at, _expected(nodes), value)
        raise error
    return Node(types, nullable, {}, check)


def _by_tag(nodes: list[Node], value: dict[str, Any], at: str) -> list[Node]:
    """Object branches told apart by a property with fixed values (`type`, `role`)."""
    for prop in nodes[0].tags:
        if not all(prop in n.tags for n in nodes):
            continue
        tag = value.get(prop)
        if tag is None:
            raise missing(f"{at}.{prop}")
        chosen = [n for n in nodes if tag in n.tags[prop]]
        if not chosen:
            raise value_error(f"{at}.{prop}", tag, [v for n in nodes for v in n.tags[prop]])
        return chosen
    return nodes


def _expected(nodes: list[Node]) -> str:
    names = list(dict.fromkeys(n.expected() for n in nodes))
    return names[0] if len(names) == 1 else "one of " + ", ".join(names[:-1]) + f" or {names[-1]}"


def _tags(schema: Mapping[str, Any]) -> dict[str, Any]:
    props = schema.get("properties") or {}
    return {name: tuple(p["enum"]) for name, p in props.items()
            if name in schema.get("required", ()) and isinstance(p, dict) and p.get("enum")}


def _enum(schema: Mapping[str, Any]) -> Check | None:
    allowed = schema.get("enum")
    if not allowed:
        return None
    members = frozenset(allowed)

    def check(value: Any, at: str) -> None:
        if isinstance(value, (str, int, float)) and value in members:
            return
        raise value_error(at, value, list(allowed))
    return check


def _number(schema: Mapping[str, Any]) -> Check | None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is None and high is None:
        return None
    kind = "integer" if schema.get("type") == "integer" else "decimal"

    def check(value: Any, at: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if low is not None and value < low:
            raise InvalidRequest(f"Invalid '{at}': {kind} below minimum value. Expected a value >= "
                                 f"{low}, but got {clip(value)} instead.", param=at,
                                 code=f"{kind}_below_min_value")
        if high is not None and value > high:
            raise InvalidRequest(f"Invalid '{at}': {kind} above maximum value. Expected a value <= "
                                 f"{high}, but got {clip(value)} instead.", param=at,
                                 code=f"{kind}_above_max_value")
    return check


def _string(schema: Mapping[str, Any]) -> Check | None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is None and high is None:
        return None

    def check(value: Any, at: str) -> None:
        if isinstance(value, str):
            check_length(value, at, low, high)
    return check


def check_length(value: str, at: str, low: int | None, high: int | None) -> None:
    if low is not None and len(value) < low:
        raise InvalidRequest(f"Invalid '{at}': string too short. Expected a string with minimum "
                             f"length {low}, but got a string with length {len(value)} instead.",
                             param=at, code="string_below_min_length")
    if high is not None and len(value) > high:
        raise InvalidRequest(f"Invalid '{at}': string too long. Expected a string with maximum "
                             f"length {high}, but got a string with length {len(value)} instead.",
                             param=at, code="string_above_max_length")


def _array(schema: Mapping[str, Any]) -> Check | None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    items = schema.get("items")
    item = _entry(compile_schema(items)) if items else None
    if low is None and high is None and item is None:
        return None

    def check(value: Any, at: str) -> None:
        if not isinstance(value, list):
            return
        check_items(value, at, low, high)
        if item is not None:
            for i, v in enumerate(value):
                item(v, f"{at}[{i}]")
    return check


def check_items(value: list[Any], at: str, low: int | None, high: int | None) -> None:
    if low is not None and len(value) < low:
        if not value:
            raise InvalidRequest(f"Invalid '{at}': empty array. Expected an array with minimum "
                                 f"length {low}, but got an empty array instead.", param=at,
                                 code="empty_array")
        raise InvalidRequest(f"Invalid '{at}': array too short. Expected an array with minimum "
                             f"length {low}, but got an array with length {len(value)} instead.",
                             param=at, code="array_below_min_length")
    if high is not None and len(value) > high:
        raise InvalidRequest(f"Invalid '{at}': array too long. Expected an array with maximum "
                             f"length {high}, but got an array with length {len(value)} instead.",
                             param=at, code="array_above_max_length")


def _object(schema: Mapping[str, Any]) -> Check | None:
    props = {name: _entry(compile_schema(s)) for name, s in (schema.get("properties") or {}).items()}
    required = tuple(schema.get("required") or ())
    extra = schema.get("additionalProperties")
    other = _entry(compile_schema(extra)) if isinstance(extra, dict) and extra else None
    most = schema.get("maxProperties")
    if not (props or required or other or most is not None):
        return None

    def check(value: Any, at: str) -> None:
        if not isinstance(value, dict):
            return
        if most is not None and len(value) > most:
            raise InvalidRequest(f"Invalid '{at}': too many properties. Expected an object with at "
                                 f"most {most} properties, but got {len(value)} instead.",
                                 param=at, code="object_above_max_properties")
        for name in required:
            if name not in value:
                raise missing(f"{at}.{name}")
        for name, v in value.items():
            c = props.get(name, other)
            if c is not None:
                c(v, f"{at}.{clip(name)}")
    return check
