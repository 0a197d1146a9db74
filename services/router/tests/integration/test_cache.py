"""The response cache in the real router (gRPC server, fake auth, fake OpenAI upstream that
records each call, NATS JetStream for the usage events): a miss then a hit that calls no
provider, streams replayed byte for byte, the hit's usage event, Cache-Control, tenants, a bad
header, what is never stored, a group that caches by default, and Redis (real, or down)."""

from __future__ import annotations

import uuid

import grpc
import orjson
import pytest
from google.api import httpbody_pb2
from router_fakes import GOOD_KEY, FakeKey
from router_harness import start_router, stop_router
from switchboard.events.v1 import events_pb2
from switchboard_common.testing.infra import free_port, reachable, redis_url

pytestmark = pytest.mark.timeout(60)
OTHER_TENANT_KEY = "sk-test-other-tenant"
SAME_TENANT_KEY = "sk-test-same-tenant"
CACHING_KEY = "sk-test-caching"
KEYS = {GOOD_KEY: FakeKey("key-good"), SAME_TENANT_KEY: FakeKey("key-same"),
        OTHER_TENANT_KEY: FakeKey("key-other", tenant_id="tenant-2"),
        CACHING_KEY: FakeKey("key-caching", tenant_id="tenant-3", cache_responses=True)}


def _models(*extra: dict) -> dict:
    return {"models": [{"name": "ok-model", "aliases": ["ok-alias"],
                        "deployments": [{"provider": "fake", "model": "ok-model"}]},
                       {"name": "midstream-abort", "deployments": [{"provider": "fake"}]},
                       {"name": "broken", "deployments": [{"provider": "fake"}]},
                       {"name": "ok-cached", "cache": True,
                        "deployments": [{"provider": "fake", "model": "ok-cached"}]}, *extra]}


@pytest.fixture
async def router(tmp_path, tokenizer, nats_url):
    h = await start_router(tmp_path, tokenizer, nats_url, auth_keys=KEYS, config=_models())
    yield h
    await stop_router(h)


def _body(**fields) -> bytes:
    return orjson.dumps({"model": "ok-model", "messages": [{"role": "user", "content": "hi"}]}
                        | fields)


async def _call(h, body: bytes, *headers: tuple[str, str], key: str = GOOD_KEY,
                rpc: str = "ChatCompletions"):
    md = (("x-request-id", uuid.uuid4().hex), ("authorization", f"Bearer {key}"), *headers)
    call = getattr(h.stub, rpc)(httpbody_pb2.HttpBody(content_type="application/json", data=body),
                                metadata=md)
    if rpc == "Embeddings":
        message = await call
        return dict(await call.initial_metadata()), message.data
    messages = [m async for m in call]
    return dict(await call.initial_metadata()), b"".join(m.data for m in messages)


ON = ("x-switchboard-cache", "on")


async def test_a_miss_then_a_hit_that_calls_no_provider_and_costs_nothing(router):
    first_headers, first = await _call(router, _body(), ON)
    second_headers, second = await _call(router, _body(), ON)
    assert (first_headers["x-switchboard-cache"], second_headers["x-switchboard-cache"]) == (
        "miss", "hit")
    assert second == first  # the same body, byte for byte
    assert len(router.upstream.requests) == 1
    assert second_headers["x-switchboard-cost-usd"] == "0.000000"
    assert "x-switchboard-provider" not in second_headers  # nothing was routed
    (_, miss), (_, hit) = await router.events(2)
    assert (miss.cache_hit, hit.cache_hit) == (False, True)
    # The hit records the answer's own token counts (costing 0 in billing) and no provider.
    assert (hit.prompt_tokens, hit.completion_tokens) == (miss.prompt_tokens, miss.completion_tokens)
    assert hit.token_source == events_pb2.TOKEN_SOURCE_PROVIDER
    assert (hit.provider, hit.deployment, hit.attempts) == ("", "", 0)
    assert hit.outcome == events_pb2.OUTCOME_SUCCESS and hit.http_status == 200


async def test_an_alias_shares_its_groups_answers_and_field_order_does_not_matter(router):
    await _call(router, _body(temperature=0.5, seed=3), ON)
    body = orjson.dumps({"seed": 3, "messages": [{"content": "hi", "role": "user"}],
                         "temperature": 0.5, "model": "ok-alias"})
    headers, _ = await _call(router, body, ON)
    assert headers["x-switchboard-cache"] == "hit"
    headers, _ = await _call(router, _body(temperature=0.6, seed=3), ON)  # another parameter
    assert headers["x-switchboard-cache"] == "miss"
    assert len(router.upstream.requests) == 2


async def test_a_stream_hit_replays_the_stream_byte_for_byte(router):
    body = _body(stream=True, stream_options={"include_usage": True})
    first_headers, first = await _call(router, body, ON)
    second_headers, second = await _call(router, body, ON)
    assert (first_headers["x-switchboard-cache"], second_headers["x-switchboard-cache"]) == (
        "miss", "hit")
    assert second == first and first.endswith(b"data: [DONE]\n\n")
    assert b'"usage"' in second  # the usage chunk the first client got, included
    assert len(router.upstream.requests) == 1
    # A JSON answer and a stream are different entries.
    headers, _ = await _call(router, _body(), ON)
    assert headers["x-switchboard-cache"] == "miss"
    (_, _), (_, hit), _ = await router.events(3)
    assert hit.cache_hit and hit.stream and hit.completion_tokens == 7


async def test_a_cut_or_failed_answer_is_never_stored(router):
    body = _body(model="midstream-abort", stream=True)
    for _ in range(2):
        headers, data = await _call(router, body, ON)
        assert headers["x-switchboard-cache"] == "miss"
        assert b'"error"' in data
    assert len(router.upstream.requests) == 2
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await _call(router, _body(model="broken"), ON)
    assert len(router.upstream.requests) == 4


async def test_cache_control_no_store_and_no_cache(router):
    headers, _ = await _call(router, _body(), ON, ("cache-control", "no-store"))
    assert "x-switchboard-cache" not in headers  # not consulted
    headers, _ = await _call(router, _body(), ON)
    assert headers["x-switchboard-cache"] == "miss"  # no-store stored nothing
    headers, _ = await _call(router, _body(), ON, ("cache-control", "no-cache"))
    assert headers["x-switchboard-cache"] == "miss"  # not read: the provider answers again
    assert len(router.upstream.requests) == 3
    headers, _ = await _call(router, _body(), ON)
    assert headers["x-switchboard-cache"] == "hit"
    headers, _ = await _call(router, _body(), ("x-switchboard-cache", "off"))
    assert "x-switchboard-cache" not in headers
    assert len(router.upstream.requests) == 4


async def test_tenants_never_share_answers(router):
    await _call(router, _body(), ON)
    headers, _ = await _call(router, _body(), ON, key=SAME_TENANT_KEY)
    assert headers["x-switchboard-cache"] == "hit"  # another key of the same tenant
    headers, _ = await _call(router, _body(), ON, key=OTHER_TENANT_KEY)
    assert headers["x-switchboard-cache"] == "miss"
    assert len(router.upstream.requests) == 2


@pytest.mark.parametrize("value", ["yes", "maybe", ""])
async def test_any_other_header_value_is_a_400_naming_it(router, value):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(router, _body(), ("x-switchboard-cache", value))
    md = dict(info.value.trailing_metadata())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (md["x-http-status"], md["x-error-param"]) == ("400", "x-switchboard-cache")
    assert not router.upstream.requests


async def test_a_group_that_caches_by_default(router):
    body = _body(model="ok-cached")
    first, _ = await _call(router, body)
    second, _ = await _call(router, body)
    assert (first["x-switchboard-cache"], second["x-switchboard-cache"]) == ("miss", "hit")
    headers, _ = await _call(router, body, ("x-switchboard-cache", "off"))
    assert "x-switchboard-cache" not in headers
    assert len(router.upstream.requests) == 2
    # Without the header, a group that does not cache is not consulted.
    headers, _ = await _call(router, _body())
    assert "x-switchboard-cache" not in headers


async def test_a_key_that_caches_by_default(router):
    # Auth's verdict says the key (or its tenant) caches: no header needed.
    first, _ = await _call(router, _body(), key=CACHING_KEY)
    second, _ = await _call(router, _body(), key=CACHING_KEY)
    assert (first["x-switchboard-cache"], second["x-switchboard-cache"]) == ("miss", "hit")
    headers, _ = await _call(router, _body(), ("x-switchboard-cache", "off"), key=CACHING_KEY)
    assert "x-switchboard-cache" not in headers
    assert len(router.upstream.requests) == 2


async def test_embeddings_and_completions_are_cached(router):
    body = orjson.dumps({"model": "ok-model", "input": ["a", "b"]})
    _, first = await _call(router, body, ON, rpc="Embeddings")
    headers, second = await _call(router, body, ON, rpc="Embeddings")
    assert headers["x-switchboard-cache"] == "hit" and second == first
    body = orjson.dumps({"model": "ok-model", "prompt": "once upon"})
    await _call(router, body, ON, rpc="Completions")
    headers, _ = await _call(router, body, ON, rpc="Completions")
    assert headers["x-switchboard-cache"] == "hit"
    assert len(router.upstream.requests) == 2


async def test_with_redis_two_routers_share_answers(tmp_path, tokenizer, nats_url):
    url = redis_url()
    if not reachable(url):
        pytest.skip(f"Redis is not reachable at {url} (SWITCHBOARD_TEST_REDIS_URL)")
    cache = {"cache": {"backend": "redis", "redis_url": url, "ttl_seconds": 30}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = await start_router(tmp_path / "a", tokenizer, nats_url, auth_keys=KEYS,
                             config=_models() | cache)
    two = await start_router(tmp_path / "b", tokenizer, nats_url, auth_keys=KEYS,
                             config=_models() | cache)
    try:
        body = _body(seed=int.from_bytes(uuid.uuid4().bytes[:4], "big"))  # unique to this run
        headers, first = await _call(one, body, ON)
        assert headers["x-switchboard-cache"] == "miss"
        await one.app.cache.settle()  # the write is off the client's path: wait for it
        headers, second = await _call(two, body, ON)
        assert headers["x-switchboard-cache"] == "hit" and second == first
        assert (len(one.upstream.requests), len(two.upstream.requests)) == (1, 0)
    finally:
        await stop_router(two)
        await stop_router(one)


async def test_redis_down_serves_every_request_as_a_miss(tmp_path, tokenizer, nats_url):
    cache = {"cache": {"backend": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0",
                       "redis_timeout_seconds": 0.2}}
    h = await start_router(tmp_path, tokenizer, nats_url, auth_keys=KEYS, config=_models() | cache)
    try:
        for _ in range(2):
            headers, data = await _call(h, _body(), ON)
            assert headers["x-switchboard-cache"] == "miss"
            assert orjson.loads(data)["object"] == "chat.completion"
        assert len(h.upstream.requests) == 2
    finally:
        await stop_router(h)


async def test_typed_grpc_clients_get_hits_too(router):
    from switchboard.gateway.v1 import gateway_pb2

    request = gateway_pb2.ChatCompletionRequest(
        model="ok-model", messages=[gateway_pb2.ChatMessage(role="user")], seed=11)
    request.messages[0].content.string_value = "typed"
    md = (("authorization", f"Bearer {GOOD_KEY}"), ON)
    first = await router.stub.CreateChatCompletion(request, metadata=md)
    call = router.stub.CreateChatCompletion(request, metadata=md)
    second = await call
    assert dict(await call.initial_metadata())["x-switchboard-cache"] == "hit"
    assert second == first
    request.stream_options.include_usage = True
    streamed = [c async for c in router.stub.StreamChatCompletion(request, metadata=md)]
    call = router.stub.StreamChatCompletion(request, metadata=md)
    replayed = [c async for c in call]
    assert dict(await call.initial_metadata())["x-switchboard-cache"] == "hit"
    assert replayed == streamed and replayed[-1].usage.completion_tokens == 7
    assert len(router.upstream.requests) == 2
