"""Several keys for one provider (`api_keys` in switchboard.yaml) through the real stack: a key the
provider throttles or rejects gives way to the next within the same request, and when none is left
the client gets a 503 `all_keys_exhausted` at once, naming the provider and never a key."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml
from openai import OpenAI

from switchboard_stack import Stack, StackConfig
from tests.e2e.test_http_edge import assert_openai_error, post
from tests.fakes.openai_upstream import run_fake_in_thread

THROTTLED, REVOKED, GOOD = "sk-ring-throttled-0001", "sk-ring-revoked-00002", "sk-ring-good-0000003"
DEAD = ("sk-dead-throttled-0001", "sk-dead-unknown-00002", "sk-dead-unknown-00003")
SECRETS = (THROTTLED, REVOKED, GOOD, *DEAD)


@pytest.fixture
def ring_stack(tmp_path):
    # The fake knows GOOD and THROTTLED (over its limit, Retry-After 120 s); any other key is a 401.
    fake = run_fake_in_thread(api_keys={GOOD, THROTTLED, DEAD[0]},
                              throttled_keys={THROTTLED: "120", DEAD[0]: "600"})
    config = {
        "providers": {
            "local": {"type": "local"},
            "ring": {"type": "openai", "base_url": fake.base_url,
                     "api_keys": ["${RING_KEY_1}", {"key": "${RING_KEY_2}"}, {"key": "${RING_KEY_3}", "rpm": 1000}]},
            "dead": {"type": "openai", "base_url": fake.base_url, "key_selection": "least_recently_throttled",
                     "api_keys": ["${DEAD_KEY_1}", "${DEAD_KEY_2}", "${DEAD_KEY_3}"]},
        },
        "models": [
            {"name": "switchboard-local", "deployments": [{"provider": "local"}]},
            {"name": "ring-model", "deployments": [{"provider": "ring", "model": "gpt-4o-mini"}]},
            {"name": "dead-model", "deployments": [{"provider": "dead", "model": "gpt-4o-mini"}]},
        ],
    }
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"RING_KEY_1": THROTTLED, "RING_KEY_2": REVOKED, "RING_KEY_3": GOOD,
           **{f"DEAD_KEY_{i + 1}": k for i, k in enumerate(DEAD)}, "SWITCHBOARD_LOG_LEVEL": "INFO"}
    s = Stack(StackConfig.ephemeral(tmp_path / "stack", env=env, own_nats=True, config_path=path))
    s.start()
    try:
        yield s, fake
    finally:
        s.stop()
        fake.stop()
    # Nothing the stack logged holds a provider key.
    for log in (tmp_path / "stack").rglob("*.log*"):
        text = log.read_text(errors="replace")
        assert not [k for k in SECRETS if k in text], log.name


def _keys_used(fake) -> list[str]:
    return [r.headers["Authorization"].removeprefix("Bearer ") for r in fake.requests]


def _stats(stack) -> dict:
    resp = httpx.get(stack.edge_url + "/api/routing/stats",
                     headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def chat(model: str, text: str = "hello", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def test_a_throttled_and_a_revoked_key_give_way_to_the_third_within_the_request(ring_stack):
    stack, fake = ring_stack
    client = OpenAI(base_url=stack.base_url, api_key=stack.master_key, max_retries=0)
    # The first request starts on the first key: 429, then the second: 401, then the third.
    first = client.chat.completions.create(**chat("ring-model", "first"))
    assert first.choices[0].message.content == "Echo: first"
    assert _keys_used(fake) == [THROTTLED, REVOKED, GOOD]
    # Traffic continues on the third alone: the throttled key cools for its Retry-After, the
    # revoked one stays out until replaced; streams too.
    for i in range(4):
        assert client.chat.completions.create(**chat("ring-model", f"n{i}")).choices[0].message.content == f"Echo: n{i}"
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        **chat("ring-model", "streamed"), stream=True) if c.choices)
    assert text == "Echo: streamed"
    assert _keys_used(fake)[3:] == [GOOD] * 5

    keys = [k for k in _stats(stack)["provider_keys"] if k["provider"] == "ring"]
    by_hint = {k["hint"]: k for k in keys}
    assert set(by_hint) == {"sk-…0001", "sk-…0002", "sk-…0003"}
    throttled, revoked, good = by_hint["sk-…0001"], by_hint["sk-…0002"], by_hint["sk-…0003"]
    assert (throttled["state"], throttled["rate_limited_responses"], throttled["requests"]) == ("cooling", 1, 1)
    assert 0 < throttled["ready_in_seconds"] <= 120
    assert (revoked["state"], revoked["rejected_responses"], revoked["requests"]) == ("invalid", 1, 1)
    assert (good["state"], good["requests"], good["rpm"]) == ("ready", 6, 1000)
    # The stats name keys only by hint.
    assert not [k for k in SECRETS if k in json.dumps(_stats(stack))]


def test_no_usable_key_is_all_keys_exhausted_at_once(ring_stack):
    stack, fake = ring_stack
    resp = post(stack, chat("dead-model"))
    assert_openai_error(resp, 503, code="all_keys_exhausted", error_type="service_unavailable")
    message = resp.json()["error"]["message"]
    assert "'dead'" in message and "1 rate limited or cooling down" in message
    assert "2 rejected by the provider" in message
    assert not [k for k in SECRETS if k in resp.text]
    assert 590 <= int(resp.headers["retry-after"]) <= 600
    # One request tried each key once; the next one calls the provider no more.
    assert sorted(_keys_used(fake)) == sorted(DEAD)
    again = post(stack, chat("dead-model", stream=True))
    assert_openai_error(again, 503, code="all_keys_exhausted")
    assert len(fake.requests) == 3
    states = sorted(k["state"] for k in _stats(stack)["provider_keys"] if k["provider"] == "dead")
    assert states == ["cooling", "invalid", "invalid"]
