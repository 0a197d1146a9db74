"""Model lookup, the order deployments are tried in, and the stats behind it."""

from __future__ import annotations

import orjson
import pytest
from switchboard_common.errors import NotFound, NotImplementedYet

from switchboard_router import config
from switchboard_router.domain import Endpoint
from switchboard_router.providers.local import LocalProvider
from switchboard_router.providers.remote import OpenAICompatibleProvider
from switchboard_router.routing import Routes, TimeoutDefaults
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
    providers = {n: LocalProvider(None) if s.type == "local" else OpenAICompatibleProvider(None, None)
                 for n, s in cfg.providers.items() if s.enabled}
    return Routes(cfg, providers, DEFAULTS, created=123, **kw)


def test_exact_alias_and_wildcard_lookup():
    routes = _routes()
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


def test_benched_deployments_go_last_and_come_back():
    routes = _routes()
    a = routes.plan("chat", Endpoint.CHAT)[0].deployment
    for _ in range(3):
        a.stats.begin()
        a.stats.fault()
        a.stats.end()
    assert [t.deployment.provider for t in routes.plan("chat", Endpoint.CHAT)] == ["b", "a"]
    snapshot = a.stats.snapshot()
    assert (snapshot.requests, snapshot.errors, snapshot.healthy, snapshot.circuit_state) == (
        3, 3, False, "open")


def test_weighted_strategy_follows_the_weights():
    raw = {**RAW, "routing": {"strategy": "weighted"}}
    values = iter([0.5, 0.5] * 1000)
    routes = _routes(raw, rng=lambda: next(values))
    # With equal draws, the heavier deployment's key 0.5**(1/3) beats 0.5**(1/1).
    assert [t.deployment.provider for t in routes.plan("chat", Endpoint.CHAT)] == ["b", "a"]
    import random

    rng = random.Random(7)
    routes = _routes(raw, rng=rng.random)
    firsts = [routes.plan("chat", Endpoint.CHAT)[0].deployment.provider for _ in range(2000)]
    assert 0.70 < firsts.count("b") / len(firsts) < 0.80  # weight 3 of 4


def test_stats_latency_and_recovery():
    now = [0.0]
    stats = DeploymentStats(failure_threshold=2, cooldown_seconds=10, clock=lambda: now[0])
    for ms in (10, 20, 30):
        stats.begin()
        stats.answered(ms / 1000)
        stats.end()
    snap = stats.snapshot()
    assert (snap.requests, snap.in_flight, snap.latency_p50_ms) == (3, 0, 20)
    assert 10 < snap.latency_ewma_ms < 30
    stats.fault()
    stats.fault()
    assert not stats.healthy
    now[0] = 11
    assert stats.healthy and stats.snapshot().circuit_state == "half_open"
    stats.answered(0.01)
    assert stats.snapshot().circuit_state == "closed"
