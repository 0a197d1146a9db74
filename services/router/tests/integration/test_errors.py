"""Errors before the first byte (gRPC status + trailing metadata), failover, and errors mid-stream."""

from __future__ import annotations

import asyncio

import grpc
import orjson
import pytest
from google.api import httpbody_pb2
from google.protobuf import empty_pb2
from prometheus_client import REGISTRY
from switchboard.events.v1 import events_pb2
from switchboard.gateway.v1 import gateway_pb2

from router_fakes import ADMIN_KEY, LIMITED_KEY

pytestmark = pytest.mark.timeout(60)


def _body(**fields) -> bytes:
    return orjson.dumps({"messages": [{"role": "user", "content": "hi"}]} | fields)


async def _fail(router, body: bytes, **md) -> tuple[grpc.aio.AioRpcError, dict]:
    call = router.stub.ChatCompletions(httpbody_pb2.HttpBody(data=body), metadata=router.md(**md))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    # A trailers-only response: no initial metadata was sent before the error.
    assert "x-request-id" not in dict(await call.initial_metadata() or ())
    return info.value, dict(info.value.trailing_metadata())


def _unauthenticated(code: str) -> float:
    return REGISTRY.get_sample_value("switchboard_router_unauthenticated_requests_total",
                                     {"code": code}) or 0.0


async def test_missing_and_unknown_keys_are_401_counted_and_make_no_event(router):
    before = _unauthenticated("missing_api_key"), _unauthenticated("invalid_api_key")
    err, md = await _fail(router, _body(model="ok-model"), key=None, request_id="r-nokey")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert md["x-http-status"] == "401" and md["x-error-type"] == "authentication_error"
    err, md = await _fail(router, _body(model="ok-model"), key="sk-wrong")
    assert md["x-http-status"] == "401" and "Incorrect API key" in err.details()
    # A bad body with a bad key is no ledger row either.
    await _fail(router, _body(), key="sk-wrong")
    after = _unauthenticated("missing_api_key"), _unauthenticated("invalid_api_key")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)  # labelled by auth's reason
    await _fail(router, _body(model="no-such-model"), request_id="r-then-good")  # a valid key's 404
    (_, event), = await router.events(1)  # only the authenticated request was recorded
    assert event.request_id == "r-then-good" and event.key_id == "key-good"


async def test_authenticated_refusals_keep_their_record(router):
    """403 (model not allowed) and 400 (refused before admission) still name the key."""
    _, md = await _fail(router, _body(model="ok-model"), key=LIMITED_KEY, request_id="r-403")
    assert md["x-http-status"] == "403"
    _, md = await _fail(router, _body(), request_id="r-400")
    assert md["x-http-status"] == "400"
    events = {e.request_id: e for _, e in await router.events(2)}
    assert events["r-403"].key_id == "key-limited" and events["r-403"].http_status == 403
    assert events["r-400"].key_id == "key-good" and events["r-400"].http_status == 400
    assert {e.outcome for e in events.values()} == {events_pb2.OUTCOME_ERROR}


async def test_unknown_and_disabled_models_are_404_model_not_found(router):
    err, md = await _fail(router, _body(model="no-such-model"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert md["x-error-code"] == "model_not_found" and md["x-error-param"] == "model"
    err, md = await _fail(router, _body(model="gpt-secret"))
    assert md["x-error-code"] == "model_not_found"
    assert "ROUTER_TEST_MISSING_KEY" in err.details()  # says how to enable it


@pytest.mark.parametrize(("body", "param", "code"), [
    (b"{not json", None, "invalid_json"),
    (_body(), "model", "missing_required_parameter"),
    (orjson.dumps({"model": "ok-model", "messages": []}), "messages", "empty_array"),
    (orjson.dumps({"model": "ok-model", "messages": [{"content": "x"}]}), "messages[0].role",
     "missing_required_parameter"),
    (_body(model="ok-model", n=0), "n", "integer_below_min_value"),
    (_body(model="ok-model", stream="yes"), "stream", "invalid_type"),
])
async def test_invalid_requests_name_the_param(router, body, param, code):
    err, md = await _fail(router, body)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert md["x-http-status"] == "400" and md["x-error-code"] == code
    assert md.get("x-error-param") == param


async def test_upstream_429_keeps_retry_after(router):
    err, md = await _fail(router, _body(model="limited"))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert md["x-http-status"] == "429" and md["retry-after"] == "7"


async def test_upstream_500_is_502_and_upstream_401_hides_the_key(router):
    _, md = await _fail(router, _body(model="broken"))
    assert md["x-http-status"] == "502"
    err, md = await _fail(router, _body(model="bad-creds"))
    assert md["x-http-status"] == "502" and "sk-abc" not in err.details()
    err, md = await _fail(router, _body(model="bad-request"))
    assert md["x-http-status"] == "400" and md["x-error-param"] == "temperature"


async def test_failover_to_the_next_deployment(router):
    _, messages = await router.chat(_body(model="with-failover"))
    assert orjson.loads(messages[0].data)["model"] == "ok-failover"
    _, messages = await router.chat(_body(model="unreachable-then-ok", stream=True))
    assert b"".join(m.data for m in messages).endswith(b"data: [DONE]\n\n")
    events = await router.events(2)
    assert [e.deployment for _, e in events] == ["fake2/ok-failover", "fake/ok-2"]
    assert [e.attempts for _, e in events] == [2, 2]  # the failed deployment, then the one that answered

    stats = await router.stub.GetRoutingStats(gateway_pb2.GetRoutingStatsRequest(),
                                              metadata=router.md(key=ADMIN_KEY))
    by_name = {(d.model, d.deployment): d for d in stats.deployments}
    broken = by_name[("with-failover", "fake/broken")]
    assert (broken.requests, broken.errors) == (1, 1)
    good = by_name[("with-failover", "fake2/ok-failover")]
    assert (good.requests, good.errors, good.in_flight) == (1, 0, 0)
    assert good.latency_p50_ms > 0 and good.healthy
    err, md = await _fail_unary(router.stub.GetRoutingStats(gateway_pb2.GetRoutingStatsRequest(),
                                                            metadata=router.md()))
    assert md["x-http-status"] == "403"


async def _fail_unary(call):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value, dict(info.value.trailing_metadata())


async def test_midstream_abort_becomes_an_error_event(router):
    _, messages = await router.chat(_body(model="midstream-abort", stream=True))
    data = b"".join(m.data for m in messages)
    last = data.split(b"\n\n")[-2]
    assert last.startswith(b'data: {"error":')
    assert orjson.loads(last[6:])["error"]["type"] == "upstream_error"
    assert b"[DONE]" not in data
    (_, event), = await router.events(1)
    assert event.outcome == events_pb2.OUTCOME_ERROR and event.http_status == 502


async def test_provider_timeouts(router):
    err, md = await _fail(router, _body(model="slow-answer"))
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and md["x-http-status"] == "504"
    _, messages = await router.chat(_body(model="stall-stream", stream=True))
    last = b"".join(m.data for m in messages).split(b"\n\n")[-2]
    assert orjson.loads(last[6:])["error"]["type"] == "timeout"
    events = await router.events(2)
    assert [e.http_status for _, e in events] == [504, 504]


async def test_client_cancel_stops_the_upstream_and_records_client_abort(router, tokenizer):
    call = router.stub.ChatCompletions(httpbody_pb2.HttpBody(data=_body(model="slow-stream",
                                                                        stream=True)),
                                       metadata=router.md(request_id="r-cancel"))
    received = 0
    async for _ in call:
        received += 1
        if received == 3:
            break
    call.cancel()
    await asyncio.wait_for(router.upstream.aborted.wait(), 5)  # the upstream call was stopped
    (headers, event), = await router.events(1)
    assert event.event_id and event.request_id == "r-cancel"
    assert event.outcome == events_pb2.OUTCOME_CLIENT_ABORT
    assert event.token_source == events_pb2.TOKEN_SOURCE_ESTIMATED
    assert 0 < event.completion_tokens < 500
    assert event.prompt_tokens == tokenizer.count_chat("slow-stream", [{"role": "user", "content": "hi"}])


async def test_moderations_forward_to_a_provider_that_has_them(router):
    reply = await router.stub.Moderations(httpbody_pb2.HttpBody(data=orjson.dumps({"input": "x"})),
                                          metadata=router.md())
    assert orjson.loads(reply.data)["results"][0]["flagged"] is False
    assert router.upstream.requests[-1]["model"] == "omni-moderation-latest"
    err, md = await _fail_unary(router.stub.Moderations(
        httpbody_pb2.HttpBody(data=orjson.dumps({"input": "x", "model": "switchboard-local"})),
        metadata=router.md()))
    assert md["x-http-status"] == "501"


async def test_verdicts_are_cached_and_dropped_by_keys_changed(router):
    for _ in range(3):
        await router.chat(_body(model="switchboard-local"))
    # The key alone (checked before the body is parsed), which allows every model: two of three
    # requests never asked auth.
    assert router.auth.calls == [("sk-test-good", "")]
    event = events_pb2.KeysChanged(key_id="key-good", change=events_pb2.KEY_CHANGE_REVOKED)
    await router._nc.publish("keys.changed", event.SerializeToString())
    await router._nc.flush()
    for _ in range(50):
        if len(router.app.admission._cache) == 0:
            break
        await asyncio.sleep(0.02)
    await router.chat(_body(model="switchboard-local"))
    assert len(router.auth.calls) == 2


async def test_auth_unreachable_is_503_unless_cached(router):
    await router.chat(_body(model="switchboard-local"))  # cache the verdict
    await router._closers[0].stop(0)  # auth goes away
    _, messages = await router.chat(_body(model="switchboard-local"))  # served from the cache
    assert orjson.loads(messages[0].data)["object"] == "chat.completion"
    _, md = await _fail(router, _body(model="switchboard-local"), key=ADMIN_KEY)
    assert md["x-http-status"] == "503"
    err, md = await _fail_unary(router.stub.ListModels(empty_pb2.Empty(), metadata=router.md(key=ADMIN_KEY)))
    assert md["x-http-status"] == "503"


async def test_the_key_is_checked_before_the_body_is_parsed(router):
    # As OpenAI answers: no valid key, 401, whatever the body; a valid key with bad JSON, 400.
    err, md = await _fail(router, b"{not json", key=None)
    assert md["x-http-status"] == "401" and md["x-error-code"] == "missing_api_key"
    err, md = await _fail(router, b"{not json", key="sk-wrong")
    assert md["x-http-status"] == "401" and md["x-error-code"] == "invalid_api_key"
    err, md = await _fail(router, b"{not json", request_id="r-bad-json")
    assert md["x-http-status"] == "400" and md["x-error-code"] == "invalid_json"
    assert router.auth.calls[-1] == ("sk-test-good", "")  # the key alone: no model was read
    # The authenticated request keeps its one record, with its key (whether the refusals before
    # it are recorded is not this test's business).
    for _ in range(100):
        events = {event.request_id: event for _, event in await router.events(1)}
        if "r-bad-json" in events:
            break
        await asyncio.sleep(0.05)
    event = events["r-bad-json"]
    assert (event.key_id, event.http_status, event.outcome) == (
        "key-good", 400, events_pb2.OUTCOME_ERROR)
