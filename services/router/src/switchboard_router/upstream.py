"""Provider HTTP: one pooled aiohttp session, timeouts, unbuffered streaming, errors mapped on entry.

aiohttp rather than httpx: its pool costs 10-25x less CPU per call here
(/work/shared/research/hot-path-costs.md).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import aiohttp
from switchboard_common.errors import ApiError, UpstreamError, UpstreamTimeout

# aiohttp's own exceptions become ours where they enter, most specific first.
_ERRORS: tuple[tuple[type[BaseException], type[ApiError], str], ...] = (
    (TimeoutError, UpstreamTimeout, "The provider did not answer in time."),
    (aiohttp.ClientPayloadError, UpstreamError, "The provider ended its response early."),
    (aiohttp.ServerDisconnectedError, UpstreamError, "The provider closed the connection."),
    (aiohttp.ClientConnectorError, UpstreamError, "Could not connect to the provider."),
    (aiohttp.ClientError, UpstreamError, "The connection to the provider failed."),
    (OSError, UpstreamError, "The connection to the provider failed."),
)
CAUGHT = tuple(exc for exc, _, _ in _ERRORS)


def translate(exc: BaseException) -> ApiError:
    for kind, error, message in _ERRORS:
        if isinstance(exc, kind):
            return error(message)
    return UpstreamError("The connection to the provider failed.")


@functools.lru_cache(maxsize=256)
def timeouts(total: float, connect: float, read: float | None) -> aiohttp.ClientTimeout:
    """Built once per distinct deployment setting, not per request."""
    return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)


class UpstreamStream:
    """An open streaming response: its status, then its body read by read."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.retry_after = response.headers.get("retry-after")
        self._complete = False

    async def read(self) -> bytes:
        """The whole body (of an error answer)."""
        try:
            body = await self._response.read()
        except CAUGHT as exc:
            raise translate(exc) from None
        self._complete = True
        return body

    async def reads(self) -> AsyncIterator[bytes]:
        """Each chunk as the socket delivered it: no buffering, no per-line splitting."""
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                yield chunk
        except CAUGHT as exc:
            raise translate(exc) from None
        self._complete = True

    def finish(self) -> None:
        """Return the connection to the pool if the body was read to the end; otherwise close it,
        which stops the provider's work (the client went away or the stream failed)."""
        if self._complete:
            self._response.release()
        else:
            self._response.close()


class Upstream:
    def __init__(self, *, pool_size: int, per_host: int) -> None:
        self._pool_size = pool_size
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._per_host,
                                         ttl_dns_cache=300, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False,
                                              skip_auto_headers=("User-Agent",))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, headers: dict[str, str], data: bytes,
                   timeout: aiohttp.ClientTimeout) -> tuple[int, str | None, bytes]:
        """(status, retry-after, whole body)."""
        try:
            async with self._session.post(url, data=data, headers=headers, timeout=timeout) as resp:
                return resp.status, resp.headers.get("retry-after"), await resp.read()
        except CAUGHT as exc:
            raise translate(exc) from None

    async def open_stream(self, url: str, headers: dict[str, str], data: bytes,
                          timeout: aiohttp.ClientTimeout) -> UpstreamStream:
        try:
            response = await self._session.post(url, data=data, headers=headers, timeout=timeout)
        except CAUGHT as exc:
            raise translate(exc) from None
        return UpstreamStream(response)

