"""Model lookup, the order deployments are tried in, and the stats behind it."""

from __future__ import annotations

import orjson
import pytest
from switchboard_common.errors import NotFound, NotImplementedYet

from switchboard_router import config
from switchboard_router.domain import Endpoint
from switchboard_router.providers.local import LocalProvider
from switchboard_router.codecs.openai import OpenAICodec
from switchboard_router.providers.remote import RemoteProvider
from switchboard_router.routing import ProvidersUnavailable, Routes, TimeoutDefaults
from switchboard_router.stats import DeploymentStats

DEFAULTS = TimeoutDefaults(total_seconds=600, read_seconds=60, connect_seconds=10)
RAW = {
    "providers": {
        "a": {"type": "openai", "base_url": "http://a/v1", "api_key": "k", "timeout_seconds": 30},
        "b": {"type": "openai", "base_url": "http://b/v1", "api_key": "k"},
        "off": {"type": "openai", "base_url": "http://c/v1", "api_key": "${C_KEY:-}"},
        "local": {"type": "local"},
    },
    "models": [
        {"name": "chat", "aliases": ["chat-latest"], "deployments": [
            {"provider": "a", "model": "a-chat", "read_timeout_seconds": 5},
            {"provider": "b", "model": "b-chat", "weight": 3}]},
        {"name": "half", "deployments": [{"provider": "off"}, {"provider": "a"}]},
        {"name": "gone", "deployments": [{"provider": "off"}]},
        {"name": "echo", "deployments": [{"provider": "local"}]},
        {"name": "a/*", "deployments": [{"provider": "a"}]},
    ],
}


def _routes(raw: dict = RAW, **kw) -> Routes:
    cfg = config.parse(raw, {})
    providers = {n: LocalProvider(None) if s.type == "local" else RemoteProvider(OpenAICodec(None), None, None)
                 for n, s in cfg.providers.items() if s.enabled}
    return Routes(cfg, providers, DEFAULTS, created=123, **kw)


def test_exact_alias_and_wildcard_lookup():
    routes = _routes(rng=iter([0.9, 0.1] * 10).__next__)  # a's key 0.9 beats b's 0.1 ** (1/3)
    first, second = routes.plan("chat", Endpoint.CHAT)
    assert (first.upstream_model, second.upstream_model) == ("a-chat", "b-chat")
    assert (first.deployment.timeout_seconds, first.deployment.read_timeout_seconds) == (30, 5)
    assert (second.deployment.timeout_seconds, second.deployment.read_timeout_seconds) == (600, 60)
    assert [t.upstream_model for t in routes.plan("chat-latest", Endpoint.CHAT)] == ["a-chat", "b-chat"]
    target, = routes.plan("a/some/model:tag", Endpoint.CHAT)
    assert (target.upstream_model, target.deployment.name) == ("some/model:tag", "a/*")
    target, = routes.plan("half", Endpoint.CHAT)  # the disabled deployment is left out
    assert target.deployment.provider == "a"


def test_unknown_and_disabled_models():
    routes = _routes()
    with pytest.raises(NotFound) as info:
        routes.plan("nope", Endpoint.CHAT)
    assert (info.value.code, info.value.param) == ("model_not_found", "model")
    with pytest.raises(NotFound, match="set C_KEY to enable provider 'off'"):
        routes.plan("gone", Endpoint.CHAT)
    with pytest.raises(NotFound):
        routes.plan("a/", Endpoint.CHAT)
    with pytest.raises(NotImplementedYet):
        routes.plan("echo", Endpoint.MODERATIONS)  # the local model has no moderation


def test_listing_and_describe():
    routes = _routes()
    listed = orjson.loads(routes.listing())
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["chat", "chat-latest", "half", "echo"]
    assert listed["data"][0] == {"id": "chat", "object": "model", "created": 123, "owned_by": "a"}
    assert [m["id"] for m in orjson.loads(routes.listing(frozenset({"echo"})))["data"]] == ["echo"]
    assert routes.describe("echo")["owned_by"] == "switchboard"
    assert routes.describe("a/x")["id"] == "a/x"


def _fail(deployment, times=1, **kw):
    for _ in range(times):
        deployment.stats.begin()
        deployment.stats.fault("upstream_error", **kw)
        deployment.stats.end()


def test_open_circuits_are_skipped_and_nothing_healthy_is_a_503():
    chat = {"name": "chat", "deployments": [{"provider": "a"}, {"provider": "b"}]}
    routes = _routes({**RAW, "models": [chat], "routing": {"strategy": "failover"}})
    a, b = (t.deployment for t in routes.plan("chat", Endpoint.CHAT))
    assert (a.provider, b.provider) == ("a", "b")
    _fail(a, 3)
    assert [t.deployment.provider for t in routes.plan("chat", Endpoint.CHAT)] == ["b"]
    snapshot = a.stats.snapshot()
    assert (snapshot.requests, snapshot.errors, snapshot.healthy, snapshot.circuit_state,
            snapshot.last_error) == (3, 3, False, "open", "upstream_error")
    assert snapshot.last_error_at is not None and snapshot.success_rate == 0
    _fail(b, 3)
    with pytest.raises(ProvidersUnavailable) as info:
        routes.plan("chat", Endpoint.CHAT)
    assert (info.value.http_status, info.value.code) == (503, "all_providers_unavailable")


def test_breaker_half_opens_for_one_probe_and_closes_on_success():
    now = [0.0]
    stats = DeploymentStats(failure_threshold=2, cooldown_seconds=10, clock=lambda: now[0])
    for ms in (10, 20, 30):
        stats.begin()
        stats.answered(ms / 1000)
        stats.end()
    snap = stats.snapshot()
    assert (snap.requests, snap.in_flight, snap.latency_p50_ms, snap.latency_p95_ms) == (3, 0, 20, 30)
    assert 10 < snap.latency_ewma_ms < 30
    stats.fault()
    assert stats.healthy  # one failure is not a broken deployment
    stats.fault()
    assert (stats.healthy, stats.snapshot().circuit_state) == (False, "open")
    now[0] = 11
    assert (stats.healthy, stats.snapshot().circuit_state) == (True, "half_open")
    stats.begin()  # the probe
    assert not stats.healthy  # one probe at a time
    stats.fault()
    stats.end()
    assert stats.snapshot().circuit_state == "open"  # a failed probe opens it again at once
    now[0] = 22
    stats.begin()
    stats.end()
    stats.answered(0.01)
    assert (stats.healthy, stats.snapshot().circuit_state) == (True, "closed")
    stats.fault()
    assert stats.snapshot().circuit_state == "closed"  # a success reset the count


def test_a_throttled_deployment_rests_for_its_retry_after_without_opening():
    now = [0.0]
    stats = DeploymentStats(failure_threshold=1, cooldown_seconds=30, clock=lambda: now[0],
                            throttle_seconds=1, max_throttle_seconds=60)
    stats.fault("rate_limit_exceeded", throttled=True, retry_after=5)
    assert (stats.healthy, stats.snapshot().circuit_state) == (False, "cooling")
    now[0] = 5
    assert (stats.healthy, stats.snapshot().circuit_state) == (True, "closed")
    stats.fault("rate_limit_exceeded", throttled=True, retry_after=3600)  # capped
    now[0] = 66
    assert stats.healthy
    stats.fault("rate_limit_exceeded", throttled=True)  # no Retry-After: the default rest
    now[0] = 66.5
    assert not stats.healthy


def test_load_balanced_follows_the_weights_and_prefers_the_less_busy():
    values = iter([0.5, 0.5] * 1000)
    routes = _routes(rng=lambda: next(values))
    assert routes.strategy == "load_balanced"
    # With equal draws, the heavier deployment's key 0.5**(1/3) beats 0.5**(1/1).
    assert [t.deployment.provider for t in routes.plan("chat", Endpoint.CHAT)] == ["b", "a"]
    import random

    rng = random.Random(7)
    routes = _routes(rng=rng.random)
    firsts = [routes.plan("chat", Endpoint.CHAT)[0].deployment.provider for _ in range(2000)]
    assert 0.70 < firsts.count("b") / len(firsts) < 0.80  # weight 3 of 4
    b = next(t.deployment for t in routes.plan("chat", Endpoint.CHAT) if t.deployment.provider == "b")
    for _ in range(4):
        b.stats.begin()  # 4 in flight on weight 3 > 0 on weight 1
    assert {routes.plan("chat", Endpoint.CHAT)[0].deployment.provider for _ in range(50)} == {"a"}


def test_failover_follows_priority_then_file_order():
    raw = {**RAW, "models": [{"name": "chat", "strategy": "failover", "deployments": [
        {"provider": "a", "priority": 2}, {"provider": "b", "priority": 1},
        {"provider": "local", "priority": 2}]}]}
    routes = _routes(raw)
    assert routes.strategy_of("chat") == "failover"
    assert [t.deployment.provider for t in routes.plan("chat", Endpoint.CHAT)] == ["b", "a", "local"]


def test_cost_optimized_takes_the_cheapest_priced_deployment():
    raw = {**RAW, "routing": {"strategy": "cost_optimized"}}
    routes = _routes(raw)
    prices = {"a": 10, "b": 3}
    for _ in range(20):
        order = routes.plan("chat", Endpoint.CHAT,
                            price_of=lambda t: prices.get(t.deployment.provider))
        assert [t.deployment.provider for t in order] == ["b", "a"]
    prices = {"a": 10}  # the unpriced go after the priced ones
    order = routes.plan("chat", Endpoint.CHAT, price_of=lambda t: prices.get(t.deployment.provider))
    assert [t.deployment.provider for t in order] == ["a", "b"]


def test_latency_optimized_takes_the_fastest_and_explores_a_little():
    import random

    rng = random.Random(3)
    routes = _routes({**RAW, "routing": {"strategy": "latency_optimized"}}, rng=rng.random)
    a, b = sorted((t.deployment for t in routes.plan("chat", Endpoint.CHAT)), key=lambda d: d.provider)
    a.stats.answered(0.5)  # b has no sample yet: it is measured first
    assert routes.plan("chat", Endpoint.CHAT)[0].deployment.provider in {"a", "b"}
    b.stats.answered(0.05)
    a.stats.answered(0.01, stream=True)  # a is the faster to start a stream
    firsts = [routes.plan("chat", Endpoint.CHAT)[0].deployment.provider for _ in range(2000)]
    assert 0.9 < firsts.count("b") / len(firsts) < 1.0  # the rest explores a
    streams = [routes.plan("chat", Endpoint.CHAT, stream=True)[0].deployment.provider
               for _ in range(200)]
    assert streams.count("a") > 150


def test_unknown_strategies_are_refused_with_their_path():
    with pytest.raises(config.ConfigError, match=r"models\[0\]\.strategy.*unknown routing strategy"):
        config.parse({**RAW, "models": [{**RAW["models"][0], "strategy": "fastest"}]}, {})
    with pytest.raises(config.ConfigError, match=r"routing\.strategy"):
        config.parse({**RAW, "routing": {"strategy": "ordered"}}, {})
    with pytest.raises(ValueError, match="unknown routing strategy"):
        _routes(strategy="fastest")
    with pytest.raises(ValueError, match="`weight` is not read by the failover"):
        _routes(strategy="failover")  # RAW's chat has a weight of 3
    with pytest.raises(ValueError, match="`priority` is read by the failover strategy only"):
        _routes({**RAW, "models": [{"name": "x", "deployments": [{"provider": "a", "priority": 1}]}]})


def test_fallbacks_must_name_other_models_of_the_file():
    bad = {**RAW, "models": [{**RAW["models"][0], "fallbacks": ["chat", "nowhere"],
                              "context_window_fallbacks": ["a/*"]}, *RAW["models"][1:]]}
    with pytest.raises(config.ConfigError) as info:
        config.parse(bad, {})
    paths = [path for path, _ in info.value.problems]
    assert paths == ["models[0].fallbacks[0]", "models[0].fallbacks[1]",
                     "models[0].context_window_fallbacks[0]"]


async def test_fallbacks_follow_the_model_and_error_fallbacks_their_error():
    from switchboard_common.errors import InvalidRequest

    raw = {**RAW, "models": [
        {"name": "first", "deployments": [{"provider": "a"}], "fallbacks": ["second"],
         "context_window_fallbacks": ["big"]},
        {"name": "second", "deployments": [{"provider": "b"}]},
        {"name": "big", "deployments": [{"provider": "local"}]}]}
    routes = _routes(raw)
    plan = await routes.choose("first", Endpoint.CHAT, stream=False)
    assert [t.deployment.provider for t in plan] == ["a", "b"]
    _fail(plan[0].deployment, 3)  # the model's own deployment is open: its fallback serves
    assert [t.deployment.provider for t in await routes.choose("first", Endpoint.CHAT, stream=False)] == ["b"]
    too_long = InvalidRequest("too long", code="context_length_exceeded")
    assert [t.deployment.provider for t in routes.error_fallbacks(
        "first", Endpoint.CHAT, too_long, stream=False)] == ["local"]
    assert routes.error_fallbacks("first", Endpoint.CHAT, InvalidRequest("bad"), stream=False) == []


async def test_a_keys_allowed_models_bind_its_fallbacks():
    from switchboard_common.errors import InvalidRequest

    raw = {**RAW, "models": [
        {"name": "first", "deployments": [{"provider": "a"}], "fallbacks": ["second"],
         "context_window_fallbacks": ["big"], "content_policy_fallbacks": ["other"]},
        {"name": "second", "deployments": [{"provider": "b"}]},
        {"name": "big", "aliases": ["big-latest"], "deployments": [{"provider": "local"}]},
        {"name": "other", "deployments": [{"provider": "b", "name": "b-other"}]}]}
    routes = _routes(raw)
    only_first = frozenset({"first"})
    plan = await routes.choose("first", Endpoint.CHAT, stream=False, allowed=only_first)
    assert [t.deployment.provider for t in plan] == ["a"]  # "second" is not the key's
    allowed = await routes.choose("first", Endpoint.CHAT, stream=False,
                                  allowed=frozenset({"first", "sec*"}))
    assert [t.deployment.provider for t in allowed] == ["a", "b"]
    too_long = InvalidRequest("too long", code="context_length_exceeded")
    assert routes.error_fallbacks("first", Endpoint.CHAT, too_long, stream=False,
                                  allowed=only_first) == []
    # An alias of the fallback's group is as good as its name: the key may ask for it directly.
    assert [t.deployment.provider for t in routes.error_fallbacks(
        "first", Endpoint.CHAT, too_long, stream=False,
        allowed=frozenset({"first", "big-latest"}))] == ["local"]
    refused = InvalidRequest("refused", code="content_policy_violation")
    assert routes.error_fallbacks("first", Endpoint.CHAT, refused, stream=False,
                                  allowed=frozenset({"first", "big"})) == []
    assert routes.fallback_allowed(frozenset(), "second")  # no list: every model
    _fail(plan[0].deployment, 3)  # its own deployment open, its fallback not the key's: a 503
    with pytest.raises(ProvidersUnavailable):
        await routes.choose("first", Endpoint.CHAT, stream=False, allowed=only_first)
    assert [t.deployment.provider for t in await routes.choose(
        "first", Endpoint.CHAT, stream=False)] == ["b"]


def test_routing_strategy_from_the_environment(monkeypatch):
    from switchboard_router.settings import RouterSettings

    monkeypatch.delenv("ROUTING_STRATEGY", raising=False)
    assert RouterSettings().routing_strategy is None
    monkeypatch.setenv("ROUTING_STRATEGY", "cost_optimized")
    assert RouterSettings().routing_strategy == "cost_optimized"
    monkeypatch.setenv("ROUTING_STRATEGY", "fastest")
    with pytest.raises(ValueError, match="unknown routing strategy"):
        RouterSettings()


def test_a_deployment_failing_every_other_call_opens_by_its_failure_rate():
    now = [0.0]
    stats = DeploymentStats(failure_threshold=3, cooldown_seconds=10, clock=lambda: now[0],
                            failure_rate=0.5, failure_window=20, failure_min_calls=10)
    calls = 0
    while stats.snapshot().circuit_state == "closed":
        stats.begin()
        if calls % 2:
            stats.fault()
        else:
            stats.answered(0.01)
        stats.end()
        calls += 1
        assert calls <= 10, "half of ten calls failed: the rate opens it at the tenth"
    assert calls == 10  # never three failures in a row: the rate alone opened it
    now[0] = 11
    stats.begin()  # the probe succeeds: closed, and the window starts clean
    stats.answered(0.01)
    stats.end()
    for _ in range(4):  # 4 failures in 9 calls after it: under the rate's minimum of calls
        stats.begin()
        stats.fault()
        stats.end()
        stats.begin()
        stats.answered(0.01)
        stats.end()
    assert stats.snapshot().circuit_state == "closed"


def test_a_failure_rate_below_the_threshold_keeps_the_breaker_closed():
    stats = DeploymentStats(failure_threshold=3, cooldown_seconds=10, failure_rate=0.6,
                            failure_window=20, failure_min_calls=10)
    for i in range(200):  # 1 in 2 fail, over and over: 0.5 < 0.6
        stats.begin()
        stats.fault() if i % 2 else stats.answered(0.01)
        stats.end()
    assert stats.snapshot().circuit_state == "closed"


def test_the_preferred_deployment_goes_first_on_every_pass_and_an_unknown_one_is_refused():
    from switchboard_common.errors import InvalidRequest

    from switchboard_router.domain import Deployment, Target
    from switchboard_router.preference import check_preferred, prefer

    deployments = [Target(Deployment(route="m", name=n, provider="p", model=None, weight=1,
                                     timeout_seconds=1, read_timeout_seconds=1,
                                     connect_timeout_seconds=1), f"up-{n}") for n in "abc"]
    names = lambda targets: [t.deployment.name for t in targets]  # noqa: E731
    assert names(prefer(deployments, "m", "b")) == ["b", "a", "c"]
    assert names(prefer(deployments, "m", "up-c")) == ["c", "a", "b"]  # or its provider model
    # A retry's pass without it (its breaker opened): the others, not a 400.
    assert names(prefer(deployments[::2], "m", "b")) == ["a", "c"]
    check_preferred(deployments, "m", "b")
    check_preferred(deployments, "m", "m")
    with pytest.raises(InvalidRequest) as refused:
        check_preferred(deployments, "m", "nowhere")
    assert refused.value.param == "X-Preferred-Model"
