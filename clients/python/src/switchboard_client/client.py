"""The synchronous client: `Switchboard(target, api_key).chat.completions.create(...)`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, overload

import grpc
from google.protobuf import empty_pb2
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc

from switchboard_client._requests import (DEFAULT_TIMEOUT_SECONDS, chat_request, error_from,
                                          json_body, parsed, settings)


class Switchboard:
    """A gRPC client of Switchboard's gateway (the edge's port, or the router directly).

    Replies are the typed messages of `switchboard.gateway.v1`; errors raise SwitchboardError.
    """

    def __init__(self, target: str | None = None, api_key: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 channel: grpc.Channel | None = None) -> None:
        self.target, self._metadata = settings(target, api_key)
        self._channel = channel or grpc.insecure_channel(self.target)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self._channel)
        self.timeout = timeout
        self.chat = _Chat(self)
        self.embeddings = _Embeddings(self)
        self.models = _Models(self)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Switchboard:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise error_from(exc) from None

    def _stream(self, request: gateway_pb2.ChatCompletionRequest,
                timeout: float | None) -> Iterator[gateway_pb2.ChatCompletionChunk]:
        chunks = self.stub.StreamChatCompletion(request, metadata=self._metadata,
                                                timeout=timeout or self.timeout)
        try:
            yield from chunks
        except grpc.RpcError as exc:
            raise error_from(exc) from None
        finally:
            chunks.cancel()  # the caller stopped reading: the gateway stops the provider call


class _Completions:
    def __init__(self, client: Switchboard) -> None:
        self._client = client

    @overload
    def create(self, *, model: str, messages: Iterable[Mapping[str, Any]], stream: Literal[False] = ...,
               extra_body: Mapping[str, Any] | None = ..., timeout: float | None = ...,
               **fields: Any) -> gateway_pb2.ChatCompletion: ...
    @overload
    def create(self, *, model: str, messages: Iterable[Mapping[str, Any]], stream: Literal[True],
               extra_body: Mapping[str, Any] | None = ..., timeout: float | None = ...,
               **fields: Any) -> Iterator[gateway_pb2.ChatCompletionChunk]: ...

    def create(self, *, model: str, messages: Iterable[Mapping[str, Any]], stream: bool = False,
               extra_body: Mapping[str, Any] | None = None, timeout: float | None = None,
               **fields: Any) -> gateway_pb2.ChatCompletion | Iterator[gateway_pb2.ChatCompletionChunk]:
        """A chat completion; with stream=True an iterator of chunks as the provider sends them.
        `fields` are the other fields of OpenAI's request (temperature, tools, ...)."""
        request = chat_request(model, messages, fields, extra_body)
        if stream:
            return self._client._stream(request, timeout)
        reply: gateway_pb2.ChatCompletion = self._client._call(
            self._client.stub.CreateChatCompletion, request, timeout)
        return reply


class _Chat:
    def __init__(self, client: Switchboard) -> None:
        self.completions = _Completions(client)


class _Embeddings:
    def __init__(self, client: Switchboard) -> None:
        self._client = client

    def create(self, *, model: str, input: str | list[str], timeout: float | None = None,
               **fields: Any) -> dict[str, Any]:
        """OpenAI's embeddings response, as JSON (`data[i]["embedding"]`, `usage`)."""
        body = json_body({"model": model, "input": input, **fields})
        return parsed(self._client._call(self._client.stub.Embeddings, body, timeout))


class _Models:
    def __init__(self, client: Switchboard) -> None:
        self._client = client

    def list(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """The models this gateway serves now, in OpenAI's shape (`id`, `owned_by`, ...)."""
        reply = self._client._call(self._client.stub.ListModels, empty_pb2.Empty(), timeout)
        return list(parsed(reply)["data"])
