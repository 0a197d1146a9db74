"""Failures are clean: a router asked to stop finishes what it serves, and usage made while NATS
is down waits in the outbox and reaches billing once NATS is back. Each test has its own stack."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.e2e.conftest import _start_stack
from tests.e2e.test_http_edge import post
from tests.e2e.test_usage_billing import create_key, wait_for_records


@pytest.fixture
def own_stack(tmp_path, fake_openai):
    s = _start_stack(tmp_path / "stack", fake_openai)
    yield s
    s.stop()


def slow_stream(stack, secret: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "one two three four five six [fake:slow-200]"}]}
    return post(stack, body, key=secret)


def test_sigterm_lets_the_router_finish_streams_in_flight(own_stack):
    stack = own_stack
    key_id, secret = create_key(stack)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(slow_stream, stack, secret)
        time.sleep(0.6)  # the stream has started and has more than a second to go
        router = stack.services["router"]
        router.terminate()
        resp = in_flight.result(timeout=30)
    assert resp.status_code == 200
    assert resp.text.endswith("data: [DONE]\n\n")
    text = "".join(line for line in resp.text.split("\n\n") if '"content"' in line)
    assert "six" in text
    assert router.wait_stopped(15) == 0
    records = wait_for_records(stack, key_id, 1)
    assert [r["outcome"] for r in records] == ["success"]


def test_usage_made_while_nats_is_down_reaches_billing_later(own_stack):
    stack = own_stack
    key_id, secret = create_key(stack)
    stack.own_nats.stop()
    chat = {"model": "switchboard-local", "messages": [{"role": "user", "content": "while NATS sleeps"}]}
    responses = [post(stack, chat, key=secret) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]  # the client never notices
    time.sleep(1.0)
    assert httpx.get(stack.edge_url + "/api/billing/usage", params={"key_id": key_id},
                     headers={"authorization": f"Bearer {stack.master_key}"}).json()["records"] == []
    stack.own_nats.start()  # same port, same JetStream store
    records = wait_for_records(stack, key_id, 3, timeout=30)
    assert sorted(r["request_id"] for r in records) == sorted(r.headers["x-request-id"] for r in responses)
