"""Money on the router's real gRPC server: the cost shown to callers, budget 402s before dispatch,
and the usage event's money fields, with billing's lease and price RPCs faked."""

from __future__ import annotations

import grpc
import orjson
import pytest
from router_fakes import GOOD_KEY, FakeBilling, FakeKey
from router_harness import start_router, stop_router
from switchboard.events.v1 import events_pb2
from switchboard.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.timeout(60)

# The fake upstream's usage: 11 prompt tokens (4 cached), 7 completion tokens. At the fake
# billing's rates ($2.50 in, $1.25 cached in, $10 out per million): 7*2.5 + 4*1.25 + 7*10 = 92.5,
# rounded half up to 93 micro-dollars.
COST = "0.000093"


def _body(**fields) -> bytes:
    return orjson.dumps({"model": "ok-model", "messages": [{"role": "user", "content": "hi"}]}
                        | fields)


async def test_a_whole_answer_carries_its_cost_header(router):
    call, messages = await router.chat(_body())
    assert dict(await call.initial_metadata())["x-switchboard-cost-usd"] == COST
    (_, event), = await router.events(1)
    assert (event.cached_prompt_tokens, event.reasoning_tokens) == (4, 2)
    assert event.budget_lease_id == "" and event.reserved_micros_usd == 0  # the key has no budget


async def test_a_stream_carries_its_cost_in_the_usage_chunk_and_the_trailer(router):
    call, messages = await router.chat(_body(stream=True, stream_options={"include_usage": True}))
    events = b"".join(m.data for m in messages).split(b"\n\n")
    usage = [orjson.loads(e[6:]) for e in events if e.startswith(b"data: {")
             and orjson.loads(e[6:]).get("usage")]
    assert len(usage) == 1 and usage[0]["usage"]["cost_usd"] == 0.000093
    assert usage[0]["usage"]["prompt_tokens_details"] == {"cached_tokens": 4, "audio_tokens": 0}
    assert dict(await call.trailing_metadata())["x-switchboard-cost-usd"] == COST


async def test_typed_stream_callers_see_the_cost_in_the_usage_extra_fields(router):
    request = gateway_pb2.ChatCompletionRequest(
        model="ok-model", messages=[gateway_pb2.ChatMessage(role="user")])
    request.messages[0].content.string_value = "hi"
    request.stream_options.include_usage = True
    call = router.stub.StreamChatCompletion(request, metadata=router.md())
    chunks = [c async for c in call]
    assert chunks[-1].usage.extra_fields["cost_usd"] == pytest.approx(0.000093)
    assert dict(await call.trailing_metadata())["x-switchboard-cost-usd"] == COST
    completion = router.stub.CreateChatCompletion(request, metadata=router.md())
    await completion
    assert dict(await completion.initial_metadata())["x-switchboard-cost-usd"] == COST


async def test_a_budget_admits_what_it_has_room_for_then_refuses_with_402(tmp_path, tokenizer,
                                                                          nats_url):
    # Each request reserves its prompt plus max_tokens 10: well under 1,000 micro-dollars.
    billing = FakeBilling({"key-good": 1000})
    h = await start_router(tmp_path, tokenizer, nats_url, billing=billing,
                           auth_keys={GOOD_KEY: FakeKey("key-good")},
                           budget_lease_requests=1)
    try:
        admitted = refused = 0
        for _ in range(20):
            try:
                await h.chat(_body(max_tokens=10))
                admitted += 1
            except grpc.aio.AioRpcError as exc:
                md = dict(exc.trailing_metadata())
                assert (md["x-http-status"], md["x-error-code"]) == ("402", "budget_exceeded")
                assert md["x-error-type"] == "insufficient_quota"
                refused += 1
        assert admitted and refused and admitted + refused == 20
        events = [e for _, e in await h.events(20)]
        served = [e for e in events if e.outcome == events_pb2.OUTCOME_SUCCESS]
        assert len(served) == admitted
        assert {e.budget_lease_id for e in served} == {f"lease-key-good-{h.app.budgets.replica_id}"}
        assert all(e.reserved_micros_usd > 0 for e in served)
        # Refused before dispatch: recorded as a 402, nothing reached the provider.
        refusals = [e for e in events if e.http_status == 402]
        assert len(refusals) == refused and not any(e.provider for e in refusals)
        assert sum(93 for _ in served) <= 1000  # what was served fits in the budget
        assert len(h.upstream.requests) == admitted
    finally:
        await stop_router(h)
    # Stopping gave back what the slice held unused.
    assert billing.returned == [(f"lease-key-good-{h.app.budgets.replica_id}",
                                 billing.granted["key-good"] - 93 * admitted)]
