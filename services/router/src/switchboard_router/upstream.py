"""Provider HTTP: one pooled aiohttp session, timeouts, unbuffered streaming, errors mapped on entry,
and each call's span when its trace is sampled (trace_http; the aiohttp instrumentation is off
this session: it costs on every call, sampled or not).

aiohttp rather than httpx: its pool costs 10-25x less CPU per call here
(/work/shared/research/hot-path-costs.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
from switchboard_common import trace_http, tracing
from switchboard_common.errors import ApiError, UpstreamError, UpstreamTimeout
from yarl import URL

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


def as_sent(url: str) -> str | URL:
    """The codecs build URLs already percent-encoded; yarl would decode `%3A` in a path back to
    `:`, and a SigV4 signature covers the path exactly as it was encoded (Bedrock's model ids)."""
    return URL(url, encoded=True) if "%" in url else url


def translate(exc: BaseException) -> ApiError:
    for kind, error, message in _ERRORS:
        if isinstance(exc, kind):
            return error(message)
    return UpstreamError("The connection to the provider failed.")


def retry_after(status: int, headers: Mapping[str, str]) -> str | None:
    """When the provider asks to be called again, in seconds: OpenAI's and Azure's retry-after-ms
    (milliseconds) where sent, being the finer, else Retry-After. Only an error answer is looked
    at: a success is never retried, so its headers need not be searched."""
    if status < 300:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return str(max(0.0, float(ms)) / 1000)
        except ValueError:
            pass
    return headers.get("retry-after")


@dataclass(slots=True)  # not frozen: one is built per attempt, and a frozen one costs 2.4x
class Attempt:
    """One attempt's timeouts in seconds: the whole attempt (already cut to what is left of the
    request's deadline), the connection, and the longest wait between two reads of the body."""

    total: float
    connect: float
    read: float

    def timeout(self, *, stream: bool) -> aiohttp.ClientTimeout:
        if self.total <= 0:
            raise UpstreamTimeout("The provider did not answer in time.")
        # A whole answer arrives only once the model is done, so the wait for its headers is
        # bounded by the total alone; its body then gets the read timeout (`_read_body`).
        return aiohttp.ClientTimeout(total=self.total, sock_connect=min(self.connect, self.total),
                                     sock_read=self.read if stream else None)


class UpstreamStream:
    """An open streaming response: its status, then its body read by read."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.retry_after = retry_after(response.status, response.headers)
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
        # No cookie jar: one session serves every tenant, so a provider's cookies (Cloudflare's
        # __cf_bm on OpenAI's answers) must not be kept and sent back, and the jar filtered on
        # every call. No skip_auto_headers: every codec sends its own User-Agent, and a skip
        # list makes aiohttp copy and sort the headers per call.
        self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False,
                                              cookie_jar=aiohttp.DummyCookieJar())
        tracing.without_http_instrumentation(self._session)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, headers: dict[str, str], data: bytes,
                   attempt: Attempt) -> tuple[int, str | None, bytes]:
        """(status, retry-after, whole body)."""
        assert self._session is not None, "start() opens the pool before any call"
        timeout = attempt.timeout(stream=False)
        span, headers = trace_http.start("POST", url, headers)
        status: int | None = None
        error: BaseException | None = None
        try:
            # Released by hand: the context manager's exit only adds a wait for the request's
            # writer, done by the time the answer has come.
            resp = await self._session.post(as_sent(url), data=data, headers=headers, timeout=timeout)
            try:
                status = resp.status
                return status, retry_after(status, resp.headers), await _read_body(resp, attempt.read)
            finally:
                resp.release()
        except CAUGHT as exc:
            error = exc
            raise translate(exc) from None
        finally:
            trace_http.finish(span, status, error)

    async def open_stream(self, url: str, headers: dict[str, str], data: bytes,
                          attempt: Attempt) -> UpstreamStream:
        assert self._session is not None, "start() opens the pool before any call"
        timeout = attempt.timeout(stream=True)
        span, headers = trace_http.start("POST", url, headers)
        try:
            response = await self._session.post(as_sent(url), data=data, headers=headers, timeout=timeout)
        except CAUGHT as exc:
            trace_http.finish(span, error=exc)
            raise translate(exc) from None
        except BaseException:
            trace_http.finish(span)
            raise
        trace_http.finish(span, response.status)  # the call's span ends with its headers, as before
        return UpstreamStream(response)


async def _read_body(resp: aiohttp.ClientResponse, read_timeout: float) -> bytes:
    """The body of a whole answer, failing when the provider stalls between two reads of it."""
    content = resp.content
    if content.is_eof():  # the whole body came with the headers (the common small answer)
        return content.read_nowait()
    parts: list[bytes] = []
    while not content.at_eof():
        async with asyncio.timeout(read_timeout):
            part = await content.readany()
        if not part:
            break
        parts.append(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)

