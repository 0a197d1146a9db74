"""The shared provider session over real HTTP: what it sends and keeps from call to call. A
provider's cookies (Cloudflare's `__cf_bm` on OpenAI's answers) are neither kept nor sent back:
one session serves every tenant, and the jar's filtering cost every call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from switchboard_router.upstream import Attempt, Upstream

pytestmark = pytest.mark.timeout(60)
ATTEMPT = Attempt(total=10.0, connect=5.0, read=5.0)


@pytest.fixture
async def provider() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        await request.read()
        if request.path == "/throttled":
            return web.json_response({"error": {"message": "slow down"}}, status=429,
                                     headers={"retry-after-ms": "1500", "Retry-After": "2"})
        response = web.json_response({"ok": True})
        response.set_cookie("__cf_bm", "tenant-a", path="/")
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/"), seen


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    pool = Upstream(pool_size=4, per_host=4)
    await pool.start()
    yield pool
    await pool.close()


async def test_provider_cookies_are_not_sent_back(provider, upstream) -> None:
    base, seen = provider
    headers = {"Content-Type": "application/json", "User-Agent": "switchboard-router"}
    for _ in range(2):
        status, _, body = await upstream.post(f"{base}/v1/chat", headers, b"{}", ATTEMPT)
        assert (status, body) == (200, b'{"ok": true}')
    assert [r.headers.get("Cookie") for r in seen] == [None, None]
    assert seen[1].headers["User-Agent"] == "switchboard-router"


async def test_retry_after_is_read_from_an_error_answer_only(provider, upstream) -> None:
    base, _ = provider
    status, retry, _ = await upstream.post(f"{base}/throttled", {}, b"{}", ATTEMPT)
    assert (status, retry) == (429, "1.5")
    status, retry, _ = await upstream.post(f"{base}/v1/chat", {}, b"{}", ATTEMPT)
    assert (status, retry) == (200, None)


async def test_a_stream_body_arrives_read_by_read_and_its_connection_is_reused(provider,
                                                                               upstream) -> None:
    base, seen = provider
    for _ in range(2):
        stream = await upstream.open_stream(f"{base}/v1/chat", {}, b"{}", ATTEMPT)
        assert stream.status == 200 and stream.retry_after is None
        assert b"".join([read async for read in stream.reads()]) == b'{"ok": true}'
        stream.finish()
    assert seen[0].transport is seen[1].transport  # kept alive, back in the pool
