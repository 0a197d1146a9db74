"""The asyncio client: `await AsyncSwitchboard(target, api_key).chat.completions.create(...)`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Literal, overload

import grpc
from google.protobuf import empty_pb2
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc

from switchboard_client._requests import (DEFAULT_TIMEOUT_SECONDS, chat_request, error_from,
                                          json_body, parsed, settings)


class AsyncSwitchboard:
    """The asyncio twin of Switchboard, on grpc.aio; use `async with` or `await close()`."""

    def __init__(self, target: str | None = None, api_key: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 channel: grpc.aio.Channel | None = None) -> None:
        self.target, self._metadata = settings(target, api_key)
        self._channel = channel or grpc.aio.insecure_channel(self.target)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self._channel)
        self.timeout = timeout
        self.chat = _Chat(self)
        self.embeddings = _Embeddings(self)
        self.models = _Models(self)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncSwitchboard:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise error_from(exc) from None

    async def _stream(self, request: gateway_pb2.ChatCompletionRequest,
                      timeout: float | None) -> AsyncIterator[gateway_pb2.ChatCompletionChunk]:
        call = self.stub.StreamChatCompletion(request, metadata=self._metadata,
                                              timeout=timeout or self.timeout)
        try:
            async for chunk in call:
                yield chunk
        except grpc.RpcError as exc:
            raise error_from(exc) from None
        finally:
            call.cancel()  # the caller stopped reading: the gateway stops the provider call


class _Completions:
    def __init__(self, client: AsyncSwitchboard) -> None:
        self._client = client

    @overload
    async def create(self, *, model: str, messages: Iterable[Mapping[str, Any]],
                     stream: Literal[False] = ..., extra_body: Mapping[str, Any] | None = ...,
                     timeout: float | None = ..., **fields: Any) -> gateway_pb2.ChatCompletion: ...
    @overload
    async def create(self, *, model: str, messages: Iterable[Mapping[str, Any]], stream: Literal[True],
                     extra_body: Mapping[str, Any] | None = ..., timeout: float | None = ...,
                     **fields: Any) -> AsyncIterator[gateway_pb2.ChatCompletionChunk]: ...

    async def create(self, *, model: str, messages: Iterable[Mapping[str, Any]], stream: bool = False,
                     extra_body: Mapping[str, Any] | None = None, timeout: float | None = None,
                     **fields: Any
                     ) -> gateway_pb2.ChatCompletion | AsyncIterator[gateway_pb2.ChatCompletionChunk]:
        """A chat completion; with stream=True an async iterator of chunks (as the OpenAI SDK's
        `await create(..., stream=True)` then `async for`)."""
        request = chat_request(model, messages, fields, extra_body)
        if stream:
            return self._client._stream(request, timeout)
        reply: gateway_pb2.ChatCompletion = await self._client._call(
            self._client.stub.CreateChatCompletion, request, timeout)
        return reply


class _Chat:
    def __init__(self, client: AsyncSwitchboard) -> None:
        self.completions = _Completions(client)


class _Embeddings:
    def __init__(self, client: AsyncSwitchboard) -> None:
        self._client = client

    async def create(self, *, model: str, input: str | list[str], timeout: float | None = None,
                     **fields: Any) -> dict[str, Any]:
        body = json_body({"model": model, "input": input, **fields})
        return parsed(await self._client._call(self._client.stub.Embeddings, body, timeout))


class _Models:
    def __init__(self, client: AsyncSwitchboard) -> None:
        self._client = client

    async def list(self, timeout: float | None = None) -> list[dict[str, Any]]:
        reply = await self._client._call(self._client.stub.ListModels, empty_pb2.Empty(), timeout)
        return list(parsed(reply)["data"])
