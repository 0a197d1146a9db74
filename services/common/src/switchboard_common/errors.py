"""Errors that cross the wire: each class carries its gRPC code, HTTP status and OpenAI type/code.

The interceptor turns a raised `ApiError` into a gRPC status with trailing metadata; the edge's Lua
filter turns that into OpenAI's `{"error": {"message", "type", "param", "code"}}` body and status.
"""

from __future__ import annotations

import re

import grpc

# A client value echoed in a message is cut to this many characters; the message and param as a
# whole are capped too, since they travel as gRPC trailers and a trailer over Envoy's header limit
# turns a 400 into a 502.
CLIP_CHARS = 200
MAX_MESSAGE_CHARS = 1024
MAX_PARAM_CHARS = 256
_QUOTED = re.compile(rf"'([^']{{{CLIP_CHARS + 1},}})'")


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """A client value as a message may show it: at most `limit` characters, saying how many more."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _bounded(message: str) -> str:
    """Long quoted values clipped (every raiser quotes what it echoes), then the whole capped."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    message = _QUOTED.sub(lambda m: f"'{clip(m.group(1))}'", message)
    return clip(message, MAX_MESSAGE_CHARS)


def _header_safe(value: str) -> str:
    """A metadata value gRPC accepts: printable ASCII only. A param can hold a client's key
    (`logit_bias.<key>`), and one control or non-ASCII character made grpc-core refuse the whole
    status, which reached the client as an empty 500."""
    if value.isascii() and value.isprintable():
        return value
    return value.encode("unicode_escape").decode("ascii")


class ApiError(Exception):
    grpc_code = grpc.StatusCode.INTERNAL
    http_status = 500
    error_type = "server_error"
    default_code: str | None = None
    # The API whose error body the edge renders: OpenAI's by default, "anthropic" on /v1/messages.
    shape: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after: int | None = None) -> None:
        message = _bounded(message)
        super().__init__(message)
        self.message = message
        self.param = clip(param, MAX_PARAM_CHARS) if param else param
        self.code = code or self.default_code
        self.retry_after = retry_after

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        md = [("x-http-status", str(self.http_status)), ("x-error-type", self.error_type)]
        if self.code:
            md.append(("x-error-code", self.code))
        if self.param:
            md.append(("x-error-param", _header_safe(self.param)))
        if self.retry_after is not None:
            md.append(("retry-after", str(self.retry_after)))
        if self.shape:
            md.append(("x-error-shape", self.shape))
        return tuple(md)

    def to_openai(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type,
                          "param": self.param, "code": self.code}}


class InvalidRequest(ApiError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400
    error_type = "invalid_request_error"


class Unauthenticated(ApiError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class MissingApiKey(Unauthenticated):
    """No key at all: every service that takes a key says it the same way, as OpenAI does."""

    default_code = "missing_api_key"

    def __init__(self) -> None:
        super().__init__("You didn't provide an API key. You need to provide your API key in an "
                         "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                         "YOUR_KEY).")


class InsufficientQuota(ApiError):
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 402
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class PermissionDenied(ApiError):
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403
    error_type = "permission_error"
    default_code = "model_not_allowed"


class NotFound(ApiError):
    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class Conflict(ApiError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    http_status = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class PayloadTooLarge(ApiError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimited(ApiError):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class NotImplementedYet(ApiError):
    grpc_code = grpc.StatusCode.UNIMPLEMENTED
    http_status = 501
    error_type = "not_implemented"
    default_code = "not_implemented"


class NotSupportedYet(InvalidRequest):
    """A field the API defines for a feature that is not built yet: refused, never stored and
    left unenforced. The caller's request is what must change, so it is a 400."""

    default_code = "not_implemented"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"'{field}' is not supported yet: {reason}. Leave it out: nothing would "
                         "apply it.", param=field)


class UpstreamError(ApiError):
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 502
    error_type = "upstream_error"
    default_code = "upstream_error"


class ServiceUnavailable(ApiError):
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    error_type = "service_unavailable"
    default_code = "service_unavailable"


class UpstreamTimeout(ApiError):
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    http_status = 504
    error_type = "timeout"
    default_code = "upstream_timeout"


_ALL = (InvalidRequest, Unauthenticated, InsufficientQuota, PermissionDenied, NotFound, Conflict,
        PayloadTooLarge, RateLimited, NotImplementedYet, UpstreamError, ServiceUnavailable,
        UpstreamTimeout)
_BY_HTTP_STATUS = {str(cls.http_status): cls for cls in _ALL}
# A neighbour that failed without our metadata: only these codes carry a meaning worth keeping.
_BY_BARE_GRPC_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.UNIMPLEMENTED: NotImplementedYet,
}


def from_rpc_error(exc: grpc.aio.AioRpcError, *, service: str) -> ApiError:
    """Translate a neighbour's gRPC failure back into our error, keeping its OpenAI shape."""
    md = dict(exc.trailing_metadata() or ())
    cls = _BY_HTTP_STATUS.get(md.get("x-http-status", "")) or _BY_BARE_GRPC_CODE.get(exc.code())
    if cls is None:
        return ServiceUnavailable(f"{service} is unavailable ({exc.code().name.lower()})")
    return cls(exc.details() or cls.error_type, param=md.get("x-error-param"),
               code=md.get("x-error-code"))
