"""One deadline per request, across every attempt and failover: the gateway's request timeout,
the caller's gRPC deadline and its SDK's timeout; and a whole answer's body has a read timeout."""

from __future__ import annotations

import asyncio
import time

import grpc
import orjson
import pytest
from google.api import httpbody_pb2
from router_harness import start_router, stop_router
from switchboard.events.v1 import events_pb2

pytestmark = pytest.mark.timeout(60)


def _body(**fields) -> bytes:
    return orjson.dumps({"messages": [{"role": "user", "content": "hi"}]} | fields)


@pytest.fixture
async def quick(tmp_path, tokenizer, nats_url):
    """A router whose request timeout is 0.6 s."""
    h = await start_router(tmp_path, tokenizer, nats_url, request_timeout_seconds=0.6)
    yield h
    await stop_router(h)


async def _status(call) -> tuple[grpc.StatusCode, dict, str, float]:
    started = time.perf_counter()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    return (info.value.code(), dict(info.value.trailing_metadata()), info.value.details(),
            time.perf_counter() - started)


async def test_a_slow_provider_hits_the_request_deadline(quick):
    call = quick.stub.ChatCompletions(httpbody_pb2.HttpBody(data=_body(model="slow-start")),
                                      metadata=quick.md())
    code, md, details, elapsed = await _status(call)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (md["x-http-status"], md["x-error-type"], md["x-error-code"]) == (
        "504", "timeout", "request_timeout")
    assert "SWITCHBOARD_ROUTER_REQUEST_TIMEOUT_SECONDS" in details
    assert 0.5 < elapsed < 1.5  # not the provider's 2 s, nor the 600 s of before
    await asyncio.wait_for(quick.upstream.aborted.wait(), 5)  # and the provider call was closed
    (_, event), = await quick.events(1)
    assert (event.outcome, event.http_status) == (events_pb2.OUTCOME_ERROR, 504)


async def test_failover_shares_the_one_deadline(quick):
    # Two deployments that each allow 0.5 s: without one deadline the request would take 1 s.
    call = quick.stub.ChatCompletions(httpbody_pb2.HttpBody(data=_body(model="slow-twice")),
                                      metadata=quick.md())
    code, md, _, elapsed = await _status(call)
    assert md["x-error-code"] == "request_timeout"
    assert elapsed < 0.9
    (_, event), = await quick.events(1)
    assert event.deployment == "fake2/slow-start"  # the second deployment was tried, briefly


async def test_a_stream_past_its_deadline_ends_with_an_error_event(quick):
    _, messages = await quick.chat(_body(model="slow-stream", stream=True))
    data = b"".join(m.data for m in messages)
    last = orjson.loads(data.split(b"\n\n")[-2].removeprefix(b"data: "))
    assert last["error"]["type"] == "timeout" and last["error"]["code"] == "request_timeout"
    assert data.count(b'"content"') > 3  # it had started
    (_, event), = await quick.events(1)
    assert (event.outcome, event.http_status) == (events_pb2.OUTCOME_ERROR, 504)
    assert event.completion_tokens > 0  # what was produced is still counted


async def test_the_callers_grpc_deadline_bounds_the_request(router):
    call = router.stub.ChatCompletions(httpbody_pb2.HttpBody(data=_body(model="slow-start")),
                                       metadata=router.md(), timeout=0.8)
    code, md, details, elapsed = await _status(call)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert md.get("x-error-code") == "request_timeout" and "gRPC deadline" in details
    assert elapsed < 1.5
    await asyncio.wait_for(router.upstream.aborted.wait(), 5)


async def test_the_sdk_timeout_bounds_the_wait_for_the_answer(router):
    md = (*router.md(), ("x-stainless-read-timeout", "0.6"))
    call = router.stub.ChatCompletions(httpbody_pb2.HttpBody(data=_body(model="slow-start")),
                                       metadata=md)
    code, trailers, details, elapsed = await _status(call)
    assert trailers["x-error-code"] == "request_timeout" and "x-stainless-timeout" in details
    assert elapsed < 1.5
    # It bounds the wait for a stream's first bytes too ...
    stream = router.stub.ChatCompletions(
        httpbody_pb2.HttpBody(data=_body(model="slow-start", stream=True)), metadata=md)
    _, trailers, _, elapsed = await _status(stream)
    assert trailers["x-error-code"] == "request_timeout" and elapsed < 1.5


async def test_the_sdk_timeout_does_not_cut_a_stream_that_flows(router):
    # ... but not a stream that has begun, as the SDKs themselves do not.
    md = (*router.md(), ("x-stainless-timeout", "0.3"))
    call = router.stub.ChatCompletions(
        httpbody_pb2.HttpBody(data=_body(model="slow-stream", stream=True)), metadata=md)
    started, data = time.perf_counter(), b""
    async for message in call:
        data += message.data
        if time.perf_counter() - started > 0.8:
            break
    call.cancel()
    assert b'"error"' not in data and data.count(b'"content"') > 10


async def test_a_whole_answer_whose_body_stalls_hits_the_read_timeout(router):
    call = router.stub.ChatCompletions(httpbody_pb2.HttpBody(data=_body(model="stall-body")),
                                       metadata=router.md())
    code, md, _, elapsed = await _status(call)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and md["x-error-code"] == "upstream_timeout"
    assert elapsed < 1.5  # the deployment's 0.3 s read timeout, not the provider's 2 s stall
