"""A provider reached over HTTP: a wire format's pure codec driven through the shared upstream pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.providers import openai_compatible as codec
from switchboard_router.providers.base import Call, Reply
from switchboard_router.upstream import Upstream, timeouts


class OpenAICompatibleProvider:
    """OpenAI, and any vendor speaking its format (the catalog's entries, self-hosted servers)."""

    endpoints = frozenset(Endpoint)

    def __init__(self, wire: codec.Wire, upstream: Upstream) -> None:
        self._wire = wire
        self._upstream = upstream

    async def send(self, call: Call) -> Reply:
        url, headers, data = codec.build_request(self._wire, call)
        status, retry_after, body = await self._upstream.post(
            url, headers, data, _timeout(call.deployment, stream=False))
        if status >= 300:
            raise codec.map_error(status, body, retry_after)
        parsed, usage = codec.parse_response(body)
        # The provider's bytes go to the client as they are: parsed once, never re-serialised.
        return Reply(data=body, usage=usage, text=lambda: codec.response_text(parsed))

    def stream(self, call: Call) -> tuple[codec.SseRelay, AsyncIterator[bytes]]:
        relay = codec.SseRelay(forward_usage=call.include_usage)
        return relay, self._pieces(call, relay)

    async def _pieces(self, call: Call, relay: codec.SseRelay) -> AsyncIterator[bytes]:
        url, headers, data = codec.build_request(self._wire, call)
        response = await self._upstream.open_stream(
            url, headers, data, _timeout(call.deployment, stream=True))
        try:
            if response.status >= 300:
                raise codec.map_error(response.status, await response.read(), response.retry_after)
            async for read in response.reads():
                out = relay.feed(read)
                if out:
                    yield out
            tail = relay.finish()
            if tail:
                yield tail
        finally:
            response.finish()


def _timeout(deployment: Deployment, *, stream: bool):
    # A non-stream answer arrives whole after the model is done, so only the total applies to it.
    return timeouts(deployment.timeout_seconds, deployment.connect_timeout_seconds,
                    deployment.read_timeout_seconds if stream else None)
