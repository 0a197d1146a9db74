"""Routing through the real edge with the provider fakes failing on request: breakers open,
half-open and close; a 429's Retry-After rests the deployment; latency_optimized avoids the slow
one; cost_optimized takes the cheap one; a fallback crosses from an OpenAI-format deployment to an
Anthropic-format one with a tool call intact, and never to a model the key's allowed_models do not
name; a stream cut midway ends in an error event; the
stats come as JSON numbers; routing decisions are response headers."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest
import yaml
from switchboard_stack import Stack, StackConfig

from tests.e2e.conftest import OTHER_PROVIDER_KEYS, PROVIDER_KEY
from tests.e2e.test_http_edge import assert_openai_error, post
from tests.e2e.test_usage_billing import create_key

FAIL = "[fake:error-500]"
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def _config(fake_openai: str, anthropic_url: str) -> dict:
    openai = {"type": "openai", "base_url": fake_openai, "api_key": PROVIDER_KEY}
    return {
        "providers": {
            "openai": openai,
            "anthropic": {"type": "anthropic", "base_url": anthropic_url,
                          "api_key": OTHER_PROVIDER_KEYS[0]},
        },
        "models": [
            {"name": "solo", "deployments": [{"provider": "openai", "model": "gpt-4o-mini",
                                              "name": "solo-dep"}]},
            {"name": "mixed", "strategy": "failover", "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini+error-500", "name": "broken"},
                {"provider": "openai", "model": "gpt-4o-mini", "name": "healthy", "priority": 1}]},
            {"name": "throttled", "strategy": "failover", "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini+error-429", "name": "limited"},
                {"provider": "openai", "model": "gpt-4o-mini", "name": "spare", "priority": 1}]},
            {"name": "quick", "strategy": "latency_optimized", "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini+slow-400", "name": "slow"},
                {"provider": "openai", "model": "gpt-4o-mini", "name": "fast"}]},
            {"name": "thrifty", "strategy": "cost_optimized", "deployments": [
                {"provider": "openai", "model": "gpt-4o", "name": "dear"},
                {"provider": "openai", "model": "gpt-4o-mini", "name": "cheap"}]},
            {"name": "gpt-first", "fallbacks": ["claude"], "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini+error-500", "name": "gpt-down"}]},
            {"name": "guarded", "fallbacks": ["claude"], "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini+error-500", "name": "guarded-down"}]},
            {"name": "claude", "deployments": [
                {"provider": "anthropic", "model": "claude-sonnet-4-5", "name": "claude-dep"}]},
            {"name": "cut", "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini+abort-mid-stream", "name": "cut-dep"}]},
        ],
        "routing": {"failure_threshold": 2, "cooldown_seconds": 1, "throttle_cooldown_seconds": 1,
                    "retries": {"attempts": 1, "initial_backoff_seconds": 0.05,
                                "max_retry_after_seconds": 5}},
        "prices": {"catalog": "none", "deployments": {
            "dear": {"input": 10, "output": 30}, "cheap": {"input": 0.15, "output": 0.6}}},
    }


@pytest.fixture(scope="module")
def routed(tmp_path_factory, fake_openai, fake_providers):
    tmp = tmp_path_factory.mktemp("routing")
    path = tmp / "switchboard.yaml"
    path.write_text(yaml.safe_dump(_config(fake_openai, fake_providers["ANTHROPIC_BASE_URL"])))
    env = {"OPENAI_API_KEY": PROVIDER_KEY, "SWITCHBOARD_LOG_LEVEL": "INFO"}
    s = Stack(StackConfig.ephemeral(tmp / "stack", env=env, own_nats=True, config_path=path))
    s.start()
    yield s
    s.stop()


def _chat(stack, model: str, text: str = "hello", key: str = "master", **body) -> httpx.Response:
    return post(stack, {"model": model, "messages": [{"role": "user", "content": text}], **body},
                key=key)


def _stats(stack) -> dict:
    resp = httpx.get(stack.edge_url + "/api/routing/stats",
                     headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _deployment(stack, name: str) -> dict:
    return next(d for d in _stats(stack)["deployments"] if d["deployment"] == name)


def _until(check, what: str, seconds: float = 20):
    """Waits for a state the stack reaches by itself (a breaker's cooldown ending)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"never saw {what}")


def test_a_failing_deployment_opens_its_breaker_then_half_opens_and_closes(routed):
    failed = _chat(routed, "solo", f"fail {FAIL}")
    assert_openai_error(failed, 502)
    assert _deployment(routed, "solo-dep")["circuit_state"] == "open"  # two attempts, two faults
    refused = _chat(routed, "solo")  # nothing healthy: refused at once, the fake not called
    assert_openai_error(refused, 503, code="all_providers_unavailable")
    assert _deployment(routed, "solo-dep")["requests"] == 2
    _until(lambda: _deployment(routed, "solo-dep")["circuit_state"] == "half_open", "half-open")
    probe = _chat(routed, "solo")
    assert probe.status_code == 200, probe.text
    assert probe.headers["x-switchboard-deployment"] == "solo-dep"
    solo = _deployment(routed, "solo-dep")
    assert (solo["circuit_state"], solo["healthy"], solo["requests"], solo["errors"]) == (
        "closed", True, 3, 2)
    assert solo["last_error"] == "upstream_error" and solo["last_error_at"].endswith("Z")


def test_failover_skips_the_broken_deployment_and_says_so_in_headers(routed):
    first = _chat(routed, "mixed")
    assert first.status_code == 200, first.text
    assert (first.headers["x-switchboard-provider"], first.headers["x-switchboard-deployment"],
            first.headers["x-switchboard-attempts"]) == ("openai", "healthy", "2")
    _chat(routed, "mixed")  # the second fault opens the broken one's circuit
    then = _chat(routed, "mixed")
    assert then.status_code == 200 and then.headers["x-switchboard-attempts"] == "1"
    broken = _deployment(routed, "broken")
    assert broken["circuit_state"] == "open" and broken["errors"] == 2 and broken["success_rate"] == 0


def test_a_429_rests_the_deployment_for_its_retry_after(routed):
    first = _chat(routed, "throttled")
    assert first.status_code == 200 and first.headers["x-switchboard-deployment"] == "spare"
    assert first.headers["x-switchboard-attempts"] == "2"
    # The fake asked for a second's rest: the next request goes straight to the spare.
    assert _deployment(routed, "limited")["circuit_state"] == "cooling"
    second = _chat(routed, "throttled")
    assert second.headers["x-switchboard-attempts"] == "1"
    limited = _deployment(routed, "limited")
    assert limited["requests"] == 1 and limited["last_error"] == "rate_limit_exceeded"


def test_latency_optimized_avoids_the_slow_deployment(routed):
    served = Counter(_chat(routed, "quick").headers["x-switchboard-deployment"] for _ in range(24))
    assert served["fast"] >= 18, served  # each measured once, a few explorations at most
    stats = {d["deployment"]: d for d in _stats(routed)["deployments"]}
    assert stats["slow"]["latency_p50_ms"] > stats["fast"]["latency_p50_ms"]


def test_cost_optimized_takes_the_cheap_deployment(routed):
    served = {_chat(routed, "thrifty").headers["x-switchboard-deployment"] for _ in range(8)}
    assert served == {"cheap"}


def test_a_fallback_crosses_to_an_anthropic_deployment_with_the_tool_call_intact(routed):
    resp = _chat(routed, "gpt-first", "call_tool for the weather in Paris", tools=[TOOL],
                 tool_choice="auto")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-switchboard-provider"] == "anthropic"
    assert resp.headers["x-switchboard-deployment"] == "claude-dep"
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call, = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"]), dict)


def test_a_fallback_the_key_may_not_use_is_skipped_and_the_error_is_the_answer(routed):
    _, restricted = create_key(routed, allowed_models=["guarded"])
    refused = _chat(routed, "guarded", key=restricted)
    assert_openai_error(refused, 502)  # its own deployment's error, in OpenAI's shape
    assert _deployment(routed, "guarded-down")["errors"] == 2  # both passes, no fallback between
    _, both = create_key(routed, allowed_models=["guarded", "claude*"])
    served = _chat(routed, "guarded", key=both)
    assert served.status_code == 200, served.text
    assert served.headers["x-switchboard-deployment"] == "claude-dep"


def test_a_stream_cut_midway_ends_with_an_error_event(routed):
    body = {"model": "cut", "stream": True, "messages": [{"role": "user", "content": "a long story"}]}
    with httpx.stream("POST", routed.edge_url + "/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {routed.master_key}"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["x-switchboard-deployment"] == "cut-dep"
        data = b"".join(resp.iter_bytes())
    events = [line[6:] for line in data.split(b"\n") if line.startswith(b"data: ")]
    assert events and b"[DONE]" not in events[-1]
    assert "error" in json.loads(events[-1])


def test_preferred_model_header(routed):
    resp = post(routed, {"messages": [{"role": "user", "content": "hi"}]},
                headers={"x-preferred-model": "solo"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-switchboard-deployment"] == "solo-dep"
    inside = post(routed, {"model": "thrifty", "messages": [{"role": "user", "content": "hi"}]},
                  headers={"x-preferred-model": "dear"})
    assert inside.headers["x-switchboard-deployment"] == "dear"
    wrong = post(routed, {"model": "thrifty", "messages": [{"role": "user", "content": "hi"}]},
                 headers={"x-preferred-model": "nowhere"})
    assert_openai_error(wrong, 400, param="X-Preferred-Model")


def test_routing_stats_are_json_numbers(routed):
    _chat(routed, "thrifty")
    stats = _stats(routed)
    assert isinstance(stats["total_requests"], int) and stats["total_requests"] > 0
    assert 0 <= stats["success_rate"] <= 1
    cheap = next(d for d in stats["deployments"] if d["deployment"] == "cheap")
    for name in ("requests", "successes", "errors", "in_flight"):
        assert isinstance(cheap[name], int), name
    for name in ("success_rate", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms", "ttft_p95_ms"):
        assert isinstance(cheap[name], float | int), name
    assert cheap["strategy"] == "cost_optimized" and cheap["last_error_at"] is None
