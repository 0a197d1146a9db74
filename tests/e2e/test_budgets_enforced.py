"""Budgets that hold, through the edge on the real stack: concurrent requests against a small
budget overshoot it by at most what one request costs beyond its reservation, with one router
and with two routers leasing from the same billing, and when every request ends on a dearer
context-window fallback; and the cost each caller is shown (header,
stream usage chunk) is what the ledger bills, as the OpenAI SDK reads it."""

from __future__ import annotations

import concurrent.futures
import shutil
import time

import grpc
import httpx
import openai
import pytest
import yaml
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc

from switchboard_stack import Stack, StackConfig
from switchboard_stack.config import free_port
from switchboard_stack.processes import ManagedProcess, grpc_serving
from tests.e2e.conftest import PROVIDER_KEY
from tests.e2e.test_http_edge import post
from tests.e2e.test_money_reports import admin, get
from tests.e2e.test_usage_billing import create_key, wait_for_records

GATEWAY = "switchboard.gateway.v1.GatewayService"
MODEL = "gpt-4o"  # genai-prices: $2.50 in, $10 out per million tokens
CONCURRENT = 50
# Each request: a short prompt, at most 20 output tokens, held in flight 300 ms by the fake so
# that all of them are admitted (or refused) while none has settled yet.
BODY = {"model": MODEL, "max_tokens": 20,
        "messages": [{"role": "user", "content": "one two three four five six seven eight nine "
                                                 "ten eleven twelve thirteen [fake:slow-300]"}]}


def set_budget(stack, key_id: str, micros_usd: int) -> None:
    resp = httpx.post(stack.edge_url + "/api/billing/budget", headers=admin(stack), timeout=10,
                      json={"key_id": key_id, "daily_limit_micros_usd": str(micros_usd)})
    assert resp.status_code == 200, resp.text


def one_request_cost(stack, body: dict = BODY) -> int:
    """What the body costs, from a key without a budget: the ledger's number."""
    key_id, secret = create_key(stack)
    resp = post(stack, body, key=secret)
    assert resp.status_code == 200, resp.text
    (record,) = wait_for_records(stack, key_id, 1)
    assert record["cost_micros_usd"] > 0
    return record["cost_micros_usd"]


def spent(stack, key_id: str, count: int) -> tuple[int, list[dict]]:
    records = wait_for_records(stack, key_id, count, timeout=30)
    assert len(records) == count
    return sum(r["cost_micros_usd"] for r in records), records


def settled_budget(stack, key_id: str, spent_micros: int) -> dict:
    """The budget once billing settled every record: nothing stays reserved beyond the slices
    the routers hold, and spend equals the ledger."""
    deadline = time.monotonic() + 20
    while True:
        budget = get(stack, f"/api/billing/budget/{key_id}").json()
        if budget["spent_micros_usd"] == spent_micros or time.monotonic() > deadline:
            return budget
        time.sleep(0.2)


def run_concurrently(send, count: int) -> list:
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def assert_overshoot_bounded(stack, key_id: str, limit: int, cost: int, statuses: list[int]):
    served = statuses.count(200)
    assert statuses.count(402) == CONCURRENT - served, statuses  # nothing else went wrong
    assert 1 <= served <= 10
    total, records = spent(stack, key_id, CONCURRENT)  # refusals are recorded too, at 0
    assert total == served * cost
    assert total <= limit + cost  # the bound: at most one request's cost over
    refused = [r for r in records if r["http_status"] == 402]
    assert len(refused) == CONCURRENT - served and all(r["cost_micros_usd"] == 0 for r in refused)
    budget = settled_budget(stack, key_id, total)
    assert budget["spent_micros_usd"] == total
    assert budget["spent_micros_usd"] + budget["reserved_micros_usd"] <= limit + cost


def test_concurrent_requests_overshoot_a_budget_by_at_most_one_request(stack):
    cost = one_request_cost(stack)
    key_id, secret = create_key(stack)
    limit = 10 * cost
    set_budget(stack, key_id, limit)
    statuses = run_concurrently(lambda: post(stack, BODY, key=secret).status_code, CONCURRENT)
    assert_overshoot_bounded(stack, key_id, limit, cost, statuses)
    # The refusal is OpenAI's shape with its own code.
    refused = post(stack, BODY, key=secret)
    assert refused.status_code == 402
    assert refused.json()["error"]["type"] == "insufficient_quota"
    assert refused.json()["error"]["code"] == "budget_exceeded"


@pytest.fixture
def second_router(stack, tmp_path):
    """Another router replica beside the stack's, with its own port and journal, leasing from
    the same billing: callers reach it over gRPC (the edge routes to the first)."""
    first = stack.services["router"]
    port = free_port()
    env = {**first.env, "SWITCHBOARD_ROUTER_GRPC_PORT": str(port),
           "SWITCHBOARD_ROUTER_JOURNAL_DIR": str(tmp_path / "journal"),
           "SWITCHBOARD_ROUTER_METRICS_PORT": "0"}
    proc = ManagedProcess("router-2", first.argv, env, tmp_path / "router-2.log", cwd=first.cwd)
    proc.start()
    try:
        proc.wait_ready(grpc_serving(f"127.0.0.1:{port}", GATEWAY), 60)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait_stopped(15)
        shutil.rmtree(tmp_path / "journal", ignore_errors=True)


def test_two_routers_together_overshoot_a_budget_by_at_most_one_request(stack, second_router):
    cost = one_request_cost(stack)
    key_id, secret = create_key(stack)
    limit = 10 * cost
    set_budget(stack, key_id, limit)
    channel = grpc.insecure_channel(second_router)
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    request = gateway_pb2.ChatCompletionRequest(model=MODEL, max_tokens=BODY["max_tokens"],
                                                messages=[gateway_pb2.ChatMessage(role="user")])
    request.messages[0].content.string_value = BODY["messages"][0]["content"]
    turn = iter(range(CONCURRENT))

    def send() -> int:
        if next(turn) % 2:  # every other request to the second replica
            try:
                stub.CreateChatCompletion(request, metadata=(("authorization", f"Bearer {secret}"),),
                                          timeout=30)
                return 200
            except grpc.RpcError as exc:
                return int(dict(exc.trailing_metadata())["x-http-status"])
        return post(stack, BODY, key=secret).status_code

    try:
        statuses = run_concurrently(send, CONCURRENT)
    finally:
        channel.close()
    assert_overshoot_bounded(stack, key_id, limit, cost, statuses)


@pytest.fixture(scope="module")
def falling_back(tmp_path_factory, fake_openai):
    """A stack whose model `short` refuses every prompt as too long and falls back to `long`,
    forty times dearer per token."""
    tmp = tmp_path_factory.mktemp("budget-fallback")
    upstream = {"type": "openai", "base_url": fake_openai, "api_key": PROVIDER_KEY}
    path = tmp / "switchboard.yaml"
    path.write_text(yaml.safe_dump({
        "providers": {"openai": upstream},
        "models": [
            {"name": "short", "context_window_fallbacks": ["long"], "deployments": [
                {"provider": "openai", "model": "gpt-4o-mini+context-too-long", "name": "short-dep"}]},
            {"name": "long", "deployments": [
                {"provider": "openai", "model": "gpt-4o", "name": "long-dep"}]}],
        "prices": {"catalog": "none", "deployments": {
            "short-dep": {"input": 0.25, "output": 0.75}, "long-dep": {"input": 10, "output": 30}}},
    }))
    s = Stack(StackConfig.ephemeral(tmp / "stack", env={"OPENAI_API_KEY": PROVIDER_KEY},
                                    own_nats=True, config_path=path))
    s.start()
    yield s
    s.stop()


def test_a_dearer_fallback_overshoots_a_budget_by_at_most_one_request(falling_back):
    """Reserved at the fallback's rates, not the model's own: at short-dep's, all 50 would fit
    a budget with room for 10 of what long-dep costs."""
    body = {**BODY, "model": "short"}
    cost = one_request_cost(falling_back, body)
    key_id, secret = create_key(falling_back)
    limit = 10 * cost
    set_budget(falling_back, key_id, limit)
    answers = run_concurrently(lambda: post(falling_back, body, key=secret), CONCURRENT)
    statuses = [a.status_code for a in answers]
    assert_overshoot_bounded(falling_back, key_id, limit, cost, statuses)
    assert {a.headers["x-switchboard-deployment"] for a in answers if a.status_code == 200} == {
        "long-dep"}


def test_the_openai_sdk_sees_the_cost_the_ledger_bills(stack):
    key_id, secret = create_key(stack)
    client = openai.OpenAI(base_url=stack.base_url, api_key=secret, max_retries=0)
    messages = [{"role": "user", "content": "what does this cost"}]
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    header = raw.headers["x-switchboard-cost-usd"]
    answer = raw.parse()
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                                 stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    streamed = usage.model_extra["cost_usd"]
    records = {r["request_id"]: r for r in wait_for_records(stack, key_id, 2)}
    whole = records[raw.headers["x-request-id"]]
    assert whole["cost_micros_usd"] > 0 and answer.usage is not None
    assert header == f"{whole['cost_micros_usd'] / 1e6:.6f}"
    (stream_record,) = (r for r in records.values() if r["stream"])
    assert streamed == stream_record["cost_micros_usd"] / 1_000_000
    # The built-in model costs nothing, and the header says so.
    local = client.chat.completions.with_raw_response.create(model="switchboard-local",
                                                             messages=messages)
    assert local.headers["x-switchboard-cost-usd"] == "0.000000"


def test_a_keys_own_budget_fields_are_enforced(stack):
    """AILB's monthly_quota_dollars on the key is billing's budget, and the router holds it."""
    cost = one_request_cost(stack)
    resp = httpx.post(stack.edge_url + "/api/keys", headers=admin(stack), timeout=10,
                      json={"name": "quota", "monthly_quota_dollars": f"{3 * cost / 1e6:.6f}"})
    assert resp.status_code == 200, resp.text
    key_id, secret = resp.json()["key"]["key_id"], resp.json()["secret"]
    statuses = [post(stack, BODY, key=secret).status_code for _ in range(6)]
    assert statuses.count(200) in (1, 2, 3) and set(statuses) == {200, 402}, statuses
    assert statuses == sorted(statuses)  # once refused, refused from then on
    total, _ = spent(stack, key_id, 6)
    assert total <= 3 * cost
