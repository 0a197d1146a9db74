"""What a Gemini request must be, as Google checks it: the official protos, then the rules the
protos do not encode (roles, non-empty parts, function responses answering the previous turn's
calls one for one, thoughtSignatures sent back verbatim, JSON schemas only with JSON output,
unique function names). A request that breaks one is Refusal(400), Google's INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

import orjson

from google.ai import generativelanguage_v1, generativelanguage_v1beta
from google.protobuf import json_format

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
REQUESTS: dict[str, Any] = {"v1beta": generativelanguage_v1beta.GenerateContentRequest,
                            "v1": generativelanguage_v1.GenerateContentRequest}
_SIGNING_KEY = secrets.token_bytes(16)  # this process's thoughtSignatures
# HTTP status -> google.rpc status name (https://ai.google.dev/gemini-api/docs/troubleshooting)
STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
            404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
MESSAGES = {429: "You exceeded your current quota, please check your plan and billing details.",
            500: "An internal error has occurred.", 503: "The model is overloaded. Please try again later."}


class Refusal(Exception):
    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or []


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None,
               array: bool = False) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return orjson.dumps([{"error": error}] if array else {"error": error})


def quota_details() -> list[dict[str, Any]]:
    """What Gemini's 429 carries (google-gemini/gemini-cli#8437): the quota hit and when to retry."""
    return [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "10"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]


def parse_proto(body: Any, message: Any) -> None:
    """`body` as the proto `message` (unknown fields refused), or Refusal(400)."""
    if not isinstance(body, dict):
        raise Refusal(400, "Invalid JSON payload received.")
    try:
        json_format.ParseDict(body, message.pb()(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise Refusal(400, f"Invalid JSON payload received. {exc}") from None


def signature(name: str) -> str:
    """An opaque thoughtSignature, verifiable by this fake (Gemini's are opaque bytes too)."""
    mac = hmac.new(_SIGNING_KEY, name.encode(), hashlib.sha256).digest()[:12]
    return base64.b64encode(b"sig:" + mac).decode()


def _same_bytes(sent: str, expected: str) -> bool:
    """A bytes field as proto JSON reads it: standard or URL-safe base64, padded or not (the
    google-genai SDK sends back URL-safe what it was given standard)."""
    def raw(text: str) -> bytes:
        text = text.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4))
    try:
        return raw(sent) == raw(expected)
    except ValueError:
        return False


def validate(body: Any, version: str = "v1beta") -> None:
    """The proto of `version` (unknown fields refused), then the semantic rules; raises Refusal."""
    parse_proto(body, REQUESTS[version])
    _check_semantics(body)


def _field(obj: dict[str, Any], camel: str) -> Any:
    """A field by its JSON name or its proto name (proto3 JSON accepts both)."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel))


def _check_semantics(body: dict[str, Any]) -> None:
    contents = body.get("contents") or []
    if not contents:
        raise Refusal(400, "* GenerateContentRequest.contents: contents is not specified")
    declared: set[str] = set()
    for tool in body.get("tools") or ():
        for fn in _field(tool, "functionDeclarations") or ():
            name = fn.get("name") or ""
            if not _NAME.fullmatch(name) or name in declared:
                raise Refusal(400, f"* GenerateContentRequest.tools[0].function_declarations: invalid or "
                                   f"repeated function name {name!r}")
            declared.add(name)
            if "parameters" in fn and _field(fn, "parametersJsonSchema") is not None:
                raise Refusal(400, "parameters and parameters_json_schema are mutually exclusive")
    config = _field(body, "generationConfig") or {}
    schema = _field(config, "responseJsonSchema") or _field(config, "responseSchema")
    if schema is not None and _field(config, "responseMimeType") != "application/json":
        raise Refusal(400, "* GenerateContentRequest.generation_config.response_mime_type: "
                           "response_schema requires response_mime_type application/json")
    calls: list[dict[str, Any]] = []  # the previous model turn's function calls
    for i, content in enumerate(contents):
        role = content.get("role")
        if role not in ("user", "model"):
            raise Refusal(400, f"Please use a valid role: user, model. (contents[{i}].role={role!r})")
        parts = content.get("parts") or []
        if not parts:
            raise Refusal(400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            if "text" in part and not part["text"]:
                raise Refusal(400, f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof "
                                   "field 'data' must have one initialized field")
            sig = _field(part, "thoughtSignature")
            fc = _field(part, "functionCall")
            if sig is not None and (fc is None or not _same_bytes(sig, signature(fc.get("name") or ""))):
                raise Refusal(400, f"contents[{i}].parts[{j}]: Corrupted thought signature.")
        responses = [_field(p, "functionResponse") for p in parts if _field(p, "functionResponse")]
        answered = role == "user" and [r.get("name") for r in responses] == [c.get("name") for c in calls] \
            and all(not c.get("id") or r.get("id") == c.get("id") for c, r in zip(calls, responses, strict=True))
        if (responses or calls) and not answered:
            raise Refusal(400, "Please ensure that the number of function response parts is equal to "
                               f"the number of function call parts of the function call turn (contents[{i}]).")
        calls = [fc for p in parts if (fc := _field(p, "functionCall"))] if role == "model" else []
        if role == "model" and calls:
            first = next(p for p in parts if _field(p, "functionCall"))
            if not _field(first, "thoughtSignature"):
                raise Refusal(400, f"Function call is missing a thought_signature in functionCall parts. "
                                   f"(contents[{i}])")
    if calls:
        raise Refusal(400, "The last turn's function calls have no function responses.")
