"""The response cache through the real edge (Envoy, router, auth, billing, NATS): a miss then a
hit that never reaches the provider, a stream replayed byte for byte, the hit billed 0 with
cache_hit in its usage record, Cache-Control no-store and no-cache, tenants kept apart, a bad
x-switchboard-cache value a 400 in OpenAI's shape."""

from __future__ import annotations

import httpx
import pytest
import yaml

from switchboard_stack import Stack, StackConfig
from tests.e2e.test_http_edge import assert_openai_error, post
from tests.e2e.test_usage_billing import create_key, wait_for_records
from tests.fakes.openai_upstream import run_fake_in_thread

PROVIDER_KEY = "sk-cache-provider-0001"
ON = {"x-switchboard-cache": "on"}


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cache")
    fake = run_fake_in_thread(api_keys={PROVIDER_KEY})
    openai = {"type": "openai", "base_url": fake.base_url, "api_key": PROVIDER_KEY}
    config = {
        "providers": {"openai": openai},
        "models": [
            {"name": "cached", "deployments": [{"provider": "openai", "model": "gpt-4o-mini",
                                                "name": "cache-dep"}]},
            {"name": "cut", "deployments": [{"provider": "openai",
                                             "model": "gpt-4o-mini+abort-mid-stream"}]},
        ],
        "cache": {"backend": "memory", "ttl_seconds": 600, "max_entries": 1000},
        "prices": {"catalog": "none", "deployments": {"cache-dep": {"input": 1, "output": 2}}},
    }
    path = tmp / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    s = Stack(StackConfig.ephemeral(tmp / "stack", env={"SWITCHBOARD_LOG_LEVEL": "INFO"},
                                    own_nats=True, config_path=path))
    s.start()
    try:
        yield s, fake
    finally:
        s.stop()
        fake.stop()


def _body(text: str, **fields) -> dict:
    return {"model": "cached", "messages": [{"role": "user", "content": text}], **fields}


def _tenant_key(stack, name: str) -> tuple[str, str]:
    resp = httpx.post(stack.edge_url + "/api/tenants", json={"name": name},
                      headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return create_key(stack, tenant_id=resp.json()["tenant_id"])


def test_a_miss_then_a_hit_billed_zero_with_cache_hit_in_the_record(cached):
    stack, fake = cached
    key_id, secret = create_key(stack)
    calls = len(fake.requests)
    first = post(stack, _body("miss then hit"), key=secret, headers=ON)
    second = post(stack, _body("miss then hit"), key=secret, headers=ON)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert (first.headers["x-switchboard-cache"], second.headers["x-switchboard-cache"]) == (
        "miss", "hit")
    assert second.content == first.content
    assert len(fake.requests) == calls + 1  # the provider answered once
    assert second.headers["x-switchboard-cost-usd"] == "0.000000"
    assert float(first.headers["x-switchboard-cost-usd"]) > 0
    records = sorted(wait_for_records(stack, key_id, 2), key=lambda r: r["occurred_at"])
    assert len(records) == 2
    miss, hit = records
    assert not miss.get("cache_hit") and hit["cache_hit"] is True
    assert int(miss["cost_micros_usd"]) > 0 and int(hit.get("cost_micros_usd", 0)) == 0
    assert hit.get("price_source") == "cache" and not hit.get("price_unknown")
    # The hit keeps the answer's own token counts.
    assert (hit["prompt_tokens"], hit["completion_tokens"]) == (
        miss["prompt_tokens"], miss["completion_tokens"])


def test_a_stream_hit_replays_byte_for_byte(cached):
    stack, fake = cached
    _, secret = create_key(stack)
    body = _body("stream me", stream=True, stream_options={"include_usage": True})
    calls = len(fake.requests)
    first = post(stack, body, key=secret, headers=ON)
    second = post(stack, body, key=secret, headers=ON)
    assert first.status_code == second.status_code == 200
    assert second.headers["content-type"].startswith("text/event-stream")
    assert (first.headers["x-switchboard-cache"], second.headers["x-switchboard-cache"]) == (
        "miss", "hit")
    assert second.content == first.content and first.content.endswith(b"data: [DONE]\n\n")
    assert b'"usage"' in second.content
    assert len(fake.requests) == calls + 1


def test_a_stream_cut_midway_is_not_kept(cached):
    stack, fake = cached
    _, secret = create_key(stack)
    body = {"model": "cut", "messages": [{"role": "user", "content": "cut"}], "stream": True}
    calls = len(fake.requests)
    for _ in range(2):
        resp = post(stack, body, key=secret, headers=ON)
        assert resp.headers["x-switchboard-cache"] == "miss"
        assert b'"error"' in resp.content
    assert len(fake.requests) == calls + 2


def test_no_store_and_no_cache(cached):
    stack, fake = cached
    _, secret = create_key(stack)
    calls = len(fake.requests)
    resp = post(stack, _body("directives"), key=secret, headers=ON | {"cache-control": "no-store"})
    assert resp.status_code == 200 and "x-switchboard-cache" not in resp.headers
    resp = post(stack, _body("directives"), key=secret, headers=ON)
    assert resp.headers["x-switchboard-cache"] == "miss"  # no-store kept nothing
    resp = post(stack, _body("directives"), key=secret, headers=ON | {"cache-control": "no-cache"})
    assert resp.headers["x-switchboard-cache"] == "miss"  # answered fresh, and kept
    assert len(fake.requests) == calls + 3
    resp = post(stack, _body("directives"), key=secret, headers=ON)
    assert resp.headers["x-switchboard-cache"] == "hit"
    resp = post(stack, _body("directives"), key=secret)  # no header: not consulted
    assert "x-switchboard-cache" not in resp.headers
    assert len(fake.requests) == calls + 4


def test_tenants_never_share_answers(cached):
    stack, fake = cached
    _, acme = _tenant_key(stack, "Cache Acme")
    _, globex = _tenant_key(stack, "Cache Globex")
    calls = len(fake.requests)
    assert post(stack, _body("tenants"), key=acme, headers=ON).headers["x-switchboard-cache"] == "miss"
    assert post(stack, _body("tenants"), key=acme, headers=ON).headers["x-switchboard-cache"] == "hit"
    other = post(stack, _body("tenants"), key=globex, headers=ON)
    assert other.headers["x-switchboard-cache"] == "miss"
    assert len(fake.requests) == calls + 2


@pytest.mark.parametrize("value", ["yes", "hit"])
def test_a_bad_header_value_is_a_400_naming_it(cached, value):
    stack, _ = cached
    resp = post(stack, _body("bad"), headers={"x-switchboard-cache": value})
    assert_openai_error(resp, 400, param="x-switchboard-cache", error_type="invalid_request_error")
    assert "x-switchboard-cache" in resp.json()["error"]["message"]


def test_a_key_or_tenant_that_caches_by_default(cached):
    stack, fake = cached
    key_id, secret = create_key(stack, cache_responses=True)
    calls = len(fake.requests)
    first = post(stack, _body("keyed"), key=secret)
    second = post(stack, _body("keyed"), key=secret)
    assert (first.headers["x-switchboard-cache"], second.headers["x-switchboard-cache"]) == (
        "miss", "hit")
    off = post(stack, _body("keyed"), key=secret, headers={"x-switchboard-cache": "off"})
    assert "x-switchboard-cache" not in off.headers
    assert len(fake.requests) == calls + 2
    # The key follows its tenant again: the default tenant does not cache.
    resp = httpx.patch(stack.edge_url + f"/api/keys/{key_id}",
                       json={"clear_cache_responses": True},
                       headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert "cache_responses" not in resp.json() or resp.json()["cache_responses"] is None
    assert "x-switchboard-cache" not in post(stack, _body("keyed"), key=secret).headers
    # A tenant that caches: its keys do, unless they say otherwise.
    tenant = httpx.post(stack.edge_url + "/api/tenants", json={"name": "Cache Co",
                                                               "cache_responses": True},
                        headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert tenant.status_code == 200 and tenant.json()["cache_responses"] is True
    _, member = create_key(stack, tenant_id=tenant.json()["tenant_id"])
    assert post(stack, _body("tenant default"), key=member).headers["x-switchboard-cache"] == "miss"
