"""Bedrock's error answers as ours, by status (its service model gives each exception one)."""

from __future__ import annotations

import orjson
from switchboard_common.errors import (
    ApiError,
    InvalidRequest,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

from switchboard_router.codecs.base import ProviderOverloaded
from switchboard_router.codecs.openai import retry_seconds


def map_error(status: int, data: bytes, retry_after: str | None = None) -> ApiError:
    """Bedrock's errors by status, as its service model gives each exception one (Throttling and
    ModelNotReady 429, Validation 400, AccessDenied 403, ResourceNotFound 404, ModelTimeout 408,
    ModelError 424, InternalServer 500, ServiceUnavailable 503), with the error's message."""
    message = _error_message(data)
    seconds = retry_seconds(retry_after)
    if status in (401, 403):
        return UpstreamError("The provider rejected the gateway's AWS credentials for this model; "
                             "the gateway's operator must check them and the model's access.",
                             code="provider_auth_error")
    if status == 429:
        return RateLimited(message or "The provider is throttling requests; retry later.",
                           retry_after=seconds)
    if status == 503:
        return ProviderOverloaded(message or "The provider is unavailable; retry later.",
                                  retry_after=seconds)
    if status == 404:
        return NotFound(message or "The provider does not know this model.", code="model_not_found")
    if status in (408, 504):
        return UpstreamTimeout("The provider timed out.")
    if status >= 500 or status == 424:
        detail = f": {message}" if message else ""
        return UpstreamError(f"The provider failed with HTTP {status}{detail}")
    return InvalidRequest(message or f"The provider rejected the request (HTTP {status}).",
                          code="provider_invalid_request")


def _error_message(data: bytes) -> str:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(parsed, dict):
        return ""
    message = parsed.get("message") or parsed.get("Message")
    return message if isinstance(message, str) else ""
