"""The response cache's parts: the key (canonical, per tenant), what a request's headers ask,
when it takes no part at all (nothing hashed), the memory store's TTL and bound, entries."""

from __future__ import annotations

import asyncio

import pytest
from switchboard_common.errors import InvalidRequest, NotFound

from switchboard_router.cache import Recording, ResponseCache
from switchboard_router.cache.config import CacheConfig
from switchboard_router.cache.directives import CACHE_HEADER, Directives, directives
from switchboard_router.cache.entry import Entry, loads
from switchboard_router.cache.keys import cache_key
from switchboard_router.cache.stores import MemoryStore
from switchboard_router.domain import Endpoint, ParsedRequest, RequestContext, Tokens

CHAT = Endpoint.CHAT
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"a": 1, "b": 2}}}],
        "response_format": {"type": "json_object"}, "seed": 7, "stop": ["x"], "max_tokens": 10}


def _unguarded() -> bool:
    return False


def _guarded() -> bool:
    return True


def _key(body=BODY, tenant="t1", model="gpt-4o", endpoint=CHAT, stream=False) -> str:
    return cache_key(endpoint, tenant, model, body, stream)


def test_the_order_of_fields_does_not_change_the_key():
    shuffled = {k: BODY[k] for k in reversed(list(BODY))}
    shuffled["tools"] = [{"function": {"parameters": {"b": 2, "a": 1}, "name": "f"},
                          "type": "function"}]
    assert _key(shuffled) == _key()
    assert len(_key()) == 64  # BLAKE2b, 32 bytes, hex


def test_tenants_never_share_a_key():
    assert _key(tenant="t1") != _key(tenant="t2")


def test_keys_restricted_to_different_models_never_share_a_key():
    # A fallback may have answered one key with a model the other may not use.
    narrow = cache_key(CHAT, "t1", "gpt-4o", BODY, False, None, frozenset({"gpt-4o"}))
    wider = cache_key(CHAT, "t1", "gpt-4o", BODY, False, None, frozenset({"gpt-4o", "claude*"}))
    assert len({narrow, wider, _key()}) == 3
    assert narrow == cache_key(CHAT, "t1", "gpt-4o", BODY, False, None, frozenset({"gpt-4o"}))


@pytest.mark.parametrize("change", [
    {"temperature": 0.3}, {"top_p": 0.5}, {"n": 2}, {"seed": 8}, {"stop": ["y"]},
    {"max_tokens": 11}, {"max_completion_tokens": 10}, {"response_format": {"type": "text"}},
    {"tool_choice": "none"}, {"tools": []}, {"messages": [{"role": "user", "content": "hi!"}]},
    {"future_param": 1},  # unknown fields reach the provider: they count too
])
def test_a_different_parameter_is_a_different_key(change):
    assert _key(BODY | change) != _key()


def test_model_endpoint_and_stream_are_part_of_the_key():
    assert _key(model="gpt-4o") != _key(model="gpt-4o-mini")
    assert _key(endpoint=Endpoint.COMPLETIONS) != _key()
    assert _key(stream=True) != _key()
    # The model in the body is replaced by the group's name: an alias keys like its group.
    assert _key(BODY | {"model": "my-alias"}) == _key()
    # `stream` is the request's, explicit: an absent one is false.
    assert _key(BODY | {"stream": False}) == _key()


def test_headers_on_off_and_cache_control():
    assert directives(None, None, default=False) is None
    assert directives(None, None, default=True) == Directives(read=True, write=True)
    assert directives("on", None, default=False) == Directives(read=True, write=True)
    assert directives(" ON ", None, default=False) == Directives(read=True, write=True)
    assert directives("off", None, default=True) is None
    assert directives("on", "no-cache", default=False) == Directives(read=False, write=True)
    assert directives("on", "max-age=0, No-Store", default=False) is None
    assert directives(None, "no-store", default=True) is None
    assert directives("on", "max-age=60", default=False) == Directives(read=True, write=True)


@pytest.mark.parametrize("value", ["yes", "", "true", "hit", "on,off"])
def test_any_other_value_is_a_400_naming_the_header(value):
    with pytest.raises(InvalidRequest) as raised:
        directives(value, None, default=False)
    assert raised.value.param == CACHE_HEADER
    assert raised.value.http_status == 400
    assert CACHE_HEADER in raised.value.message


def _ctx(switch=None, control=None) -> RequestContext:
    return RequestContext(request_id="r", key="k", started=0.0, cache_switch=switch,
                          cache_control=control)


def _request(endpoint=CHAT, body=BODY, stream=False) -> ParsedRequest:
    return ParsedRequest(endpoint=endpoint, model=body.get("model", "m"), body=body, stream=stream)


def _cache(groups: dict[str, tuple[str, bool]] | None = None) -> ResponseCache:
    groups = groups if groups is not None else {"gpt-4o": ("gpt-4o", False)}

    def group(model: str) -> tuple[str, bool]:
        if model not in groups:
            raise NotFound(f"no {model}")
        return groups[model]

    return ResponseCache(CacheConfig(), MemoryStore(10, 60), group)


def test_off_path_hashes_nothing(monkeypatch):
    def boom(*args):
        raise AssertionError("hashed a request the cache takes no part in")

    monkeypatch.setattr("switchboard_router.cache.cache_key", boom)
    cache = _cache()
    assert cache.plan(_ctx(), _request(), "t1", pipelined=_unguarded) is None
    assert cache.plan(_ctx("off"), _request(), "t1", pipelined=_unguarded) is None
    assert cache.plan(_ctx("on", "no-store"), _request(), "t1", pipelined=_unguarded) is None


def test_a_plan_keys_by_the_group_and_the_tenant():
    cache = _cache({"gpt-4o": ("gpt-4o", False), "alias": ("gpt-4o", False)})
    plan = cache.plan(_ctx("on"), _request(), "t1", pipelined=_unguarded)
    assert plan is not None and plan.read and plan.write
    via_alias = cache.plan(_ctx("on"), _request(body=BODY | {"model": "alias"}), "t1",
                           pipelined=_unguarded)
    assert via_alias is not None and via_alias.key == plan.key
    other = cache.plan(_ctx("on"), _request(), "t2", pipelined=_unguarded)
    assert other is not None and other.key != plan.key
    fresh = cache.plan(_ctx("on", "no-cache"), _request(), "t1", pipelined=_unguarded)
    assert fresh is not None and (fresh.read, fresh.write) == (False, True)


def test_a_group_default_applies_without_the_header():
    cache = _cache({"gpt-4o": ("gpt-4o", True)})
    assert cache.plan(_ctx(), _request(), "t1", pipelined=_unguarded) is not None
    assert cache.plan(_ctx("off"), _request(), "t1", pipelined=_unguarded) is None
    # ... but not where answers cannot be cached, where it stays out silently.
    assert cache.plan(_ctx(), _request(), "t1", pipelined=_guarded) is None
    moderation = _request(Endpoint.MODERATIONS, {"model": "gpt-4o", "input": "x"})
    assert cache.plan(_ctx(), moderation, "t1", pipelined=_unguarded) is None


def test_a_key_or_tenant_that_caches_by_default():
    cache = _cache()
    assert cache.plan(_ctx(), _request(), "t1", pipelined=_unguarded) is None
    assert cache.plan(_ctx(), _request(), "t1", pipelined=_unguarded, keyed=True) is not None
    assert cache.plan(_ctx("off"), _request(), "t1", pipelined=_unguarded, keyed=True) is None
    assert cache.plan(_ctx(), _request(), "t1", pipelined=_guarded, keyed=True) is None


def test_on_where_nothing_can_be_cached_is_a_400():
    cache = _cache()
    for request, pipelined in ((_request(), _guarded),
                               (_request(Endpoint.MODERATIONS, {"model": "gpt-4o", "input": "x"}),
                                _unguarded)):
        with pytest.raises(InvalidRequest) as raised:
            cache.plan(_ctx("on"), request, "t1", pipelined=pipelined)
        assert raised.value.param == CACHE_HEADER
        assert raised.value.code == "cache_not_applicable"


def test_an_unknown_model_is_left_to_fail_on_its_own():
    cache = _cache({})
    assert cache.plan(_ctx(), _request(), "t1", pipelined=_unguarded) is None
    with pytest.raises(InvalidRequest):  # a bad header value is still a 400
        cache.plan(_ctx("maybe"), _request(), "t1", pipelined=_unguarded)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _entry(data=b"{}") -> Entry:
    return Entry(data=data, stream=False, tokens=Tokens(3, 4))


async def test_memory_entries_expire_after_the_ttl():
    clock = Clock()
    store = MemoryStore(10, 60, timer=clock)
    await store.put("k", _entry())
    clock.now = 59.9
    assert await store.get("k") == _entry()
    clock.now = 60.1
    assert await store.get("k") is None


async def test_memory_holds_at_most_max_entries_least_recently_used_out():
    store = MemoryStore(2, 60)
    await store.put("a", _entry(b"a"))
    await store.put("b", _entry(b"b"))
    assert await store.get("a") is not None  # a is now the most recently used
    await store.put("c", _entry(b"c"))
    assert len(store) == 2
    assert await store.get("b") is None
    assert (await store.get("a")).data == b"a" and (await store.get("c")).data == b"c"


async def test_keep_skips_answers_too_large_or_without_token_counts():
    cache = _cache()
    plan = cache.plan(_ctx("on"), _request(), "t1", pipelined=_unguarded)
    assert plan is not None
    cache.keep(plan, b"x" * (cache.config.max_entry_bytes + 1), False, Tokens(1, 1))
    cache.keep(plan, b"{}", False, None)
    await asyncio.sleep(0)
    assert await cache.get(plan) is None
    cache.keep(plan, b"{}", False, Tokens(1, 2))
    await asyncio.sleep(0)
    assert await cache.get(plan) == Entry(b"{}", False, Tokens(1, 2))
    no_write = cache.plan(_ctx("on", "no-store"), _request(), "t1", pipelined=_unguarded)
    assert no_write is None


def test_a_recording_gives_up_past_its_bound():
    rec = Recording(10)
    rec.add(b"12345")
    rec.add(b"67890")
    assert rec.data() == b"1234567890"
    rec.add(b"x")
    assert rec.data() is None and rec.full


def test_entries_round_trip_and_junk_is_a_miss():
    entry = Entry(data=b"data: {}\n\ndata: [DONE]\n\n", stream=True, tokens=Tokens(1, 2, 3, 4, 5))
    assert loads(entry.dumps()) == entry
    for junk in (b"", b"no newline", b"{}\nx", b"not json\nx", b'{"s": true, "t": ["a"]}\nx'):
        assert loads(junk) is None


def _count(result: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(
        "switchboard_cache_lookups_total",
        {"endpoint": "chat.completions", "result": result}) or 0.0


async def test_lookups_are_counted_hit_miss_and_refresh():
    cache = ResponseCache(CacheConfig(), MemoryStore(10, 60), lambda m: (m, False), metrics=True)
    before = {r: _count(r) for r in ("hit", "miss", "refresh")}
    plan = cache.plan(_ctx("on"), _request(), "t-metrics", pipelined=_unguarded)
    assert plan is not None
    await cache.get(plan)
    cache.keep(plan, b"{}", False, Tokens(1, 1))
    await asyncio.sleep(0)
    await cache.get(plan)
    fresh = cache.plan(_ctx("on", "no-cache"), _request(), "t-metrics", pipelined=_unguarded)
    assert fresh is not None and await cache.get(fresh) is None
    assert {r: _count(r) - before[r] for r in before} == {"hit": 1, "miss": 1, "refresh": 1}
    # A router without a metrics port counts nothing.
    quiet = _cache()
    quiet_plan = quiet.plan(_ctx("on"), _request(), "t-metrics", pipelined=_unguarded)
    assert quiet_plan is not None
    await quiet.get(quiet_plan)
    assert _count("miss") - before["miss"] == 1


async def test_memory_holds_at_most_max_bytes_of_answers():
    store = MemoryStore(100, 60, max_bytes=3000)
    for name in "abcd":
        await store.put(name, _entry(name.encode() * 900))
    assert store.bytes <= 3000 and len(store) == 3
    assert await store.get("a") is None  # the least recently used went first
    await store.put("huge", _entry(b"x" * 4000))  # more than the whole bound: not kept
    assert await store.get("huge") is None and len(store) == 3


def test_a_messages_body_keys_apart_from_its_chat_translation():
    """/v1/messages may pass Anthropic's body through (its answer in Anthropic's format), and
    fields the translation drops change the answer: never a chat request's entry."""
    native = {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    assert cache_key(CHAT, "t1", "gpt-4o", BODY, False, native) != _key()
    cached = native | {"system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]}
    assert cache_key(CHAT, "t1", "gpt-4o", BODY, False, cached) != cache_key(
        CHAT, "t1", "gpt-4o", BODY, False, native)


async def test_an_answer_kept_in_anthropics_format_replays_as_such():
    from switchboard_router.cache.replay import replay
    from switchboard_router.usage import Exchange

    entry = Entry(b'{"type": "message"}', False, Tokens(1, 2), native=True)
    assert loads(entry.dumps()) == entry
    ctx = _ctx()
    ex = Exchange(request_id="r", endpoint=CHAT, started=0.0)
    assert [piece async for piece in replay(entry, ex, ctx, None)] == [
        ("application/json", b'{"type": "message"}')]
    assert ctx.native is True and ex.cache_hit
