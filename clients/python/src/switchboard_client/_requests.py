"""What the sync and async clients share: building requests, reading replies, mapping errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.api import httpbody_pb2
from google.protobuf import json_format
from switchboard.gateway.v1 import gateway_pb2

DEFAULT_TARGET = "127.0.0.1:8080"  # the edge's port serves native gRPC beside REST
DEFAULT_TIMEOUT_SECONDS = 60.0
TARGET_VARIABLE = "SWITCHBOARD_GRPC_TARGET"
KEY_VARIABLE = "SWITCHBOARD_API_KEY"

Metadata = tuple[tuple[str, str], ...]


class SwitchboardError(Exception):
    """A call Switchboard refused or failed, with OpenAI's error fields from its trailers."""

    def __init__(self, message: str, *, grpc_code: grpc.StatusCode, status_code: int | None,
                 type: str | None, code: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.grpc_code = grpc_code
        self.status_code = status_code  # the HTTP status the REST API would have answered
        self.type = type
        self.code = code


def settings(target: str | None, api_key: str | None) -> tuple[str, Metadata]:
    """The target and the call metadata, from the arguments or SWITCHBOARD_GRPC_TARGET and
    SWITCHBOARD_API_KEY."""
    key = api_key or os.environ.get(KEY_VARIABLE, "")
    if not key:
        raise ValueError(f"no API key: pass api_key= or set {KEY_VARIABLE}")
    return target or os.environ.get(TARGET_VARIABLE, DEFAULT_TARGET), (("authorization", f"Bearer {key}"),)


def chat_request(model: str, messages: Iterable[Mapping[str, Any]], fields: Mapping[str, Any],
                 extra_body: Mapping[str, Any] | None) -> gateway_pb2.ChatCompletionRequest:
    """The typed request; a field the proto does not know raises here (use `extra_body` for
    fields of a newer OpenAI API, which are passed to the provider as they are)."""
    body = {"model": model, "messages": list(messages), **fields}
    request = json_format.ParseDict(body, gateway_pb2.ChatCompletionRequest())
    if extra_body:
        request.extra_body.update(dict(extra_body))
    return request


def json_body(payload: Mapping[str, Any]) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(payload).encode())


def parsed(body: httpbody_pb2.HttpBody) -> Any:
    return json.loads(body.data)


def error_from(exc: grpc.RpcError) -> SwitchboardError:
    """The RpcError as SwitchboardError: its status, message and the edge's error trailers."""
    call: Any = exc  # grpc's RpcError is also the Call, with code(), details(), trailers
    trailers = dict(call.trailing_metadata() or ())
    status = trailers.get("x-http-status")
    return SwitchboardError(call.details() or str(call.code()), grpc_code=call.code(),
                            status_code=int(status) if status else None,
                            type=trailers.get("x-error-type"), code=trailers.get("x-error-code"))
