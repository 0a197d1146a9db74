"""Usage survives the router's crashes, and the ledger holds only what it should.

kill -9 of the router mid-stream or with acks outstanding loses nothing (the request arrives as
`interrupted` with the tokens known, or complete) and counts nothing twice; the event id is the
router's, so a reused x-request-id is two records; requests without a valid key make no row.
"""

from __future__ import annotations

import time
import uuid

import grpc
import httpx
import pytest
from switchboard_common.bpe import load_encoding
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc

from tests.e2e.conftest import _start_stack
from tests.e2e.router_kill import kill_mid_stream, kill_router, restart_router
from tests.e2e.test_http_edge import fake, post
from tests.e2e.test_usage_billing import create_key, usage_records, wait_for_records


@pytest.fixture
def own_stack(tmp_path, fake_openai):
    s = _start_stack(tmp_path / "stack", fake_openai)
    yield s
    s.stop()


def test_kill_9_mid_stream_bills_the_request_as_interrupted_with_the_tokens_known(own_stack):
    stack = own_stack
    key_id, secret = create_key(stack)
    words = " ".join(f"word{i}" for i in range(30))
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": f"{words} [fake:slow-150]"}]}
    # 20 chunks of 150 ms: 3 s in. Ticks come every second for requests open a second, so
    # one has counted this request and its record is written (at 12 chunks the tick's count
    # was now and then still in flight at the kill).
    request_id, received = kill_mid_stream(stack, body, secret)
    assert usage_records(stack, key_id) == []  # nothing was published before the kill

    restart_router(stack)
    (record,) = wait_for_records(stack, key_id, 1, timeout=30)
    assert record["request_id"] == request_id
    assert record["outcome"] == "interrupted"
    assert record["prompt_tokens"] > 0  # counted by a progress tick, > 1 s into the stream
    # Counted by a tick before the kill: some of the answer, never more than the client received.
    encoding = load_encoding("o200k_base")
    tokens = sum(len(encoding.encode(text)) for text in received)
    assert 0 < record["completion_tokens"] <= tokens
    time.sleep(1.0)
    assert len(usage_records(stack, key_id)) == 1  # and only once


def test_kill_9_with_acks_outstanding_loses_nothing_and_counts_nothing_twice(own_stack):
    stack = own_stack
    key_id, secret = create_key(stack)
    chat = {"model": "switchboard-local", "messages": [{"role": "user", "content": "bill me"}]}
    # Acked by JetStream before the kill: some of these may be re-sent, none may count twice.
    early = [post(stack, chat, key=secret) for _ in range(5)]
    wait_for_records(stack, key_id, 5)
    stack.own_nats.stop()  # acks can no longer come: every event from here on waits
    late = [post(stack, chat, key=secret) for _ in range(10)]
    assert [r.status_code for r in early + late] == [200] * 15  # clients never notice
    time.sleep(0.5)  # well past the journal's group commit
    kill_router(stack)

    stack.own_nats.start()  # same port, same JetStream store
    restart_router(stack)
    records = wait_for_records(stack, key_id, 15, timeout=30)
    time.sleep(1.0)
    records = usage_records(stack, key_id)
    assert sorted(r["request_id"] for r in records) == sorted(
        r.headers["x-request-id"] for r in early + late)
    assert len({r["event_id"] for r in records}) == 15
    assert {r["outcome"] for r in records} == {"success"}


def test_a_reused_x_request_id_over_grpc_gives_two_records(any_stack):
    stack = any_stack
    key_id, secret = create_key(stack)
    request_id = f"reused-{uuid.uuid4().hex}"
    metadata = (("authorization", f"Bearer {secret}"), ("x-request-id", request_id))
    request = gateway_pb2.ChatCompletionRequest(model="switchboard-local")
    request.messages.add(role="user").content.string_value = "same id, two requests"
    with grpc.insecure_channel(stack.config.target("router")) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for _ in range(2):
            stub.CreateChatCompletion(request, metadata=metadata, timeout=10)
    records = wait_for_records(stack, key_id, 2)
    assert [r["request_id"] for r in records] == [request_id, request_id]
    assert len({r["event_id"] for r in records}) == 2


def test_bogus_keys_make_no_rows_and_authenticated_refusals_one_each(any_stack):
    stack = any_stack
    chat = {"model": "switchboard-local", "messages": [{"role": "user", "content": "x"}]}
    bogus = [post(stack, chat, key=f"sk-bogus-{i}") for i in range(20)]
    assert {r.status_code for r in bogus} == {401}
    bogus_ids = {r.headers["x-request-id"] for r in bogus}

    limited_id, limited = create_key(stack, allowed_models=["switchboard-local"])
    key_id, secret = create_key(stack)
    forbidden = post(stack, {**chat, "model": "gpt-4o-mini"}, key=limited)
    refused = [
        post(stack, {**chat, "model": "no-such-model"}, key=secret),
        post(stack, fake(chat, "error-429"), key=secret),
        post(stack, {"model": "switchboard-local"}, key=secret),  # no messages
    ]
    assert [r.status_code for r in [forbidden, *refused]] == [403, 404, 429, 400]
    (record,) = wait_for_records(stack, limited_id, 1)
    assert record["request_id"] == forbidden.headers["x-request-id"]
    records = wait_for_records(stack, key_id, len(refused))
    assert sorted(r["request_id"] for r in records) == sorted(
        r.headers["x-request-id"] for r in refused)
    time.sleep(0.5)
    everything = httpx.get(stack.edge_url + "/api/billing/usage", params={"page_size": 1000},
                           headers={"authorization": f"Bearer {stack.master_key}"},
                           timeout=10).json()["records"]
    assert bogus_ids.isdisjoint(r["request_id"] for r in everything)
    assert all(r["key_id"] for r in everything)  # no row without a key
