"""Envoy's own replies (bad paths, oversize bodies, dead upstreams) in the APIs' error shapes.

OpenAI's `{"error": {...}}` everywhere, Anthropic's `{"type": "error", ...}` on its routes; a gRPC
client gets grpc-status and grpc-message untouched.
"""

from __future__ import annotations

from edge.routes import ANTHROPIC_PREFIX

# (status, type, code, message). Envoy's text for a dead upstream ("upstream connect error or
# disconnect/reset before headers...") says nothing a client can use, so those get ours.
_ENVOY_TEXT = "%LOCAL_REPLY_BODY%"
LOCAL_REPLY_TYPES = (
    (400, "invalid_request_error", None, _ENVOY_TEXT),
    (401, "authentication_error", "invalid_api_key", _ENVOY_TEXT),
    (404, "invalid_request_error", "not_found", _ENVOY_TEXT),
    (405, "invalid_request_error", "method_not_allowed", _ENVOY_TEXT),
    (413, "invalid_request_error", "request_too_large", _ENVOY_TEXT),
    (431, "invalid_request_error", "request_header_fields_too_large", _ENVOY_TEXT),
    (503, "service_unavailable", "service_unavailable",
     "The %UPSTREAM_CLUSTER% service is unavailable; try again shortly."),
    (504, "timeout", "timeout", "The %UPSTREAM_CLUSTER% service did not answer in time."),
)
# The same replies on Anthropic's routes, in Anthropic's shape: (status, error.type), the types of
# switchboard_router.inbound.messages.ERROR_TYPES.
ANTHROPIC_LOCAL_REPLY_TYPES = ((400, "invalid_request_error"), (401, "authentication_error"),
                               (404, "not_found_error"), (405, "invalid_request_error"),
                               (413, "request_too_large"), (431, "invalid_request_error"),
                               (503, "overloaded_error"), (504, "timeout_error"))
def _not_grpc() -> dict:
    # A gRPC client gets Envoy's reply as grpc-status and grpc-message: leave its text alone. A
    # transcoded REST request carries the gRPC content type by now, and x-envoy-original-path.
    return {"or_filter": {"filters": [
        {"header_filter": {"header": {"name": "content-type", "invert_match": True,
                                      "treat_missing_header_as_empty": True,
                                      "string_match": {"prefix": "application/grpc"}}}},
        {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}}]}}


# health.lua answers /healthz in its own shape (Envoy counts a Lua response as a local reply).
_NOT_HEALTH = {"header_filter": {"header": {"name": ":path", "invert_match": True,
                                            "treat_missing_header_as_empty": True,
                                            "string_match": {"prefix": "/healthz"}}}}


def _mapper(comparison: dict, error_type: str, code: str | None, message: str) -> dict:
    return {
        "filter": {"and_filter": {"filters": [
            {"status_code_filter": {"comparison": comparison}}, _not_grpc(), _NOT_HEALTH]}},
        "body_format_override": {"json_format": {"error": {
            "message": message, "type": error_type, "param": None, "code": code}},
            "content_type": "application/json"}}


# A request to an Anthropic route: its path, or the original path once the transcoder rewrote it.
_ANTHROPIC_ROUTE = {"or_filter": {"filters": [
    {"header_filter": {"header": {"name": name, "string_match": {"prefix": ANTHROPIC_PREFIX}}}}
    for name in (":path", "x-envoy-original-path")]}}


def _anthropic_mapper(comparison: dict, error_type: str, message: str) -> dict:
    return {
        "filter": {"and_filter": {"filters": [
            {"status_code_filter": {"comparison": comparison}}, _not_grpc(), _ANTHROPIC_ROUTE]}},
        "body_format_override": {"json_format": {"type": "error", "error": {
            "type": error_type, "message": message}}, "content_type": "application/json"}}


def _status(status: int) -> dict:
    return {"op": "EQ", "value": {"default_value": status, "runtime_key": f"edge.lr_{status}"}}


# Anything else Envoy itself answers with >= 400.
_ANY_ERROR = {"op": "GE", "value": {"default_value": 400, "runtime_key": "edge.lr_any"}}


def mappers() -> list[dict]:
    """Anthropic's routes first (the first matching mapper wins), then every other route."""
    messages = {status: message for status, _, _, message in LOCAL_REPLY_TYPES}
    anthropic = [_anthropic_mapper(_status(status), error_type, messages[status])
                 for status, error_type in ANTHROPIC_LOCAL_REPLY_TYPES]
    anthropic.append(_anthropic_mapper(_ANY_ERROR, "api_error", _ENVOY_TEXT))
    openai = [_mapper(_status(status), error_type, code, message)
              for status, error_type, code, message in LOCAL_REPLY_TYPES]
    openai.append(_mapper(_ANY_ERROR, "server_error", None, _ENVOY_TEXT))
    return anthropic + openai
