"""Rate limits hold exactly across replicas, through the real edge: two router processes and two
auth processes on one database (PostgreSQL, and SQLite on one node), each router leasing quota
from its own auth. Also: revocation seen on the very next request by both routers, and the
openai SDK reading 429, Retry-After and the x-ratelimit-* headers."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

import grpc
import httpx
import openai
import pytest
from google.api import httpbody_pb2
from switchboard.gateway.v1 import gateway_pb2_grpc

from edge.render import SERVICES, EdgeConfig
from switchboard_stack.config import free_port
from switchboard_stack.processes import ManagedProcess, grpc_serving
from tests.e2e.conftest import REPO
from tests.e2e.edge_alone import Edge
from tests.e2e.test_keys_lifecycle import ok

LOCAL = "switchboard-local"
CHAT = {"model": LOCAL, "messages": [{"role": "user", "content": "count to three"}]}


@dataclass
class Replicas:
    stack: object
    edge: Edge
    routers: list[str]  # gRPC targets, each router asking its own auth

    def admin(self, method: str, path: str, **kw) -> dict:
        return ok(httpx.request(method, self.edge.url + path, timeout=30, **kw,
                                headers={"authorization": f"Bearer {self.stack.master_key}"}))

    def key(self, **rate_limits) -> str:
        return self.admin("POST", "/api/keys", json={"name": "limited",
                                                     "rate_limits": rate_limits})["secret"]


def _second(stack, name: str, data_dir, env_changes: dict[str, str]) -> tuple[ManagedProcess, str]:
    first = stack.services[name]
    port = str(free_port())
    env = {**first.env, f"SWITCHBOARD_{name.upper()}_GRPC_PORT": port,
           f"SWITCHBOARD_{name.upper()}_METRICS_PORT": str(free_port()), **env_changes}
    proc = ManagedProcess(f"{name}-2", first.argv, env, stack.logs / f"{name}-2.log", cwd=REPO)
    proc.start()
    target = f"127.0.0.1:{port}"
    proc.wait_ready(grpc_serving(target, SERVICES[name]), 60)
    return proc, target


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def replicas(request, tmp_path_factory):
    """Beside the stack's auth and router: a second auth on the same database (and hash secret,
    read from the shared data directory) and a second router asking only that auth; an edge
    balancing over both of each."""
    stack = request.getfixturevalue("pg_stack" if request.param == "postgres" else "stack")
    data = tmp_path_factory.mktemp(f"replicas-{request.param}")
    started: list[ManagedProcess] = []
    edge = None
    try:
        auth2, auth2_target = _second(stack, "auth", data, {})
        started.append(auth2)
        router2, router2_target = _second(stack, "router", data, {
            "SWITCHBOARD_ROUTER_AUTH_TARGET": auth2_target,
            "SWITCHBOARD_ROUTER_DATA_DIR": str(data / "router-2")})
        started.append(router2)
        upstreams = {name: stack.config.target(name) for name in SERVICES}
        routers = [stack.config.target("router"), router2_target]
        upstreams["router"] = ",".join(routers)
        upstreams["auth"] = f"{stack.config.target('auth')},{auth2_target}"
        edge = Edge(EdgeConfig(upstreams=upstreams), data / "edge.log")
        edge.wait_healthy()
        yield Replicas(stack, edge, routers)
    finally:
        if edge:
            edge.close()
        for proc in reversed(started):
            proc.terminate(signal.SIGINT)
            proc.wait_stopped(15)


def _clear_of_a_minute_turning(margin: float = 20.0) -> None:
    """Start a per-minute count early enough in a UTC minute that it ends in the same one."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.1)


async def _burst(url: str, secret: str, count: int, body: dict) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                 headers={"authorization": f"Bearer {secret}"}) as client:
        return await asyncio.gather(*(client.post("/v1/chat/completions", json=body)
                                      for _ in range(count)))


def test_200_concurrent_requests_against_rpm_50_admit_exactly_50(replicas):
    secret = replicas.key(requests_per_minute=50)
    _clear_of_a_minute_turning()
    answers = asyncio.run(_burst(replicas.edge.url, secret, 200, CHAT))
    by_status: dict[int, int] = {}
    for answer in answers:
        by_status[answer.status_code] = by_status.get(answer.status_code, 0) + 1
    assert by_status == {200: 50, 429: 150}, [a.text for a in answers if a.status_code not in (200, 429)][:3]
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["type"] == "requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-limit-requests"] == "50"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    served = [a for a in answers if a.status_code == 200]
    assert {a.headers["x-ratelimit-limit-requests"] for a in served} == {"50"}
    assert min(int(a.headers["x-ratelimit-remaining-requests"]) for a in served) <= 1


def test_a_tpm_limit_holds_within_one_requests_tokens_per_router(replicas):
    body = {**CHAT, "max_tokens": 16}
    # One request's real size, to set the limit at 20 of them.
    probe = httpx.post(replicas.edge.url + "/v1/chat/completions", json=body, timeout=30,
                       headers={"authorization": f"Bearer {replicas.stack.master_key}"})
    per_request = ok(probe)["usage"]["total_tokens"]
    limit = 20 * per_request
    secret = replicas.key(tokens_per_minute=limit)
    _clear_of_a_minute_turning()
    answers = asyncio.run(_burst(replicas.edge.url, secret, 200, body))
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(served) + len(refused) == 200, [a.text for a in answers][:3]
    used = sum(a.json()["usage"]["total_tokens"] for a in served)
    # Each router's last request of a spent minute may go over by its own tokens, or leave
    # less than one request's tokens unused.
    assert limit - 2 * per_request < used <= limit + 2 * per_request
    assert refused and refused[0].json()["error"]["type"] == "tokens"
    assert refused[0].headers["x-ratelimit-limit-tokens"] == str(limit)


def _direct_chat(target: str, secret: str) -> grpc.StatusCode:
    """One chat straight to a router (not through the edge), so each router is asked."""
    with grpc.insecure_channel(target) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        try:
            for _ in stub.ChatCompletions(
                    httpbody_pb2.HttpBody(content_type="application/json",
                                          data=b'{"model": "switchboard-local", "messages": '
                                               b'[{"role": "user", "content": "hi"}]}'),
                    metadata=(("authorization", f"Bearer {secret}"),), timeout=30):
                pass
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_revocation_is_seen_on_the_next_request_by_both_routers(replicas):
    created = replicas.admin("POST", "/api/keys", json={"name": "doomed"})
    secret = created["secret"]
    # Each router caches the verdict (and would keep it for the verdict age bound, 30 s).
    assert [_direct_chat(t, secret) for t in replicas.routers] == [grpc.StatusCode.OK] * 2
    assert [_direct_chat(t, secret) for t in replicas.routers] == [grpc.StatusCode.OK] * 2
    replicas.admin("DELETE", f"/api/keys/{created['key']['key_id']}")
    assert [_direct_chat(t, secret) for t in replicas.routers] == [
        grpc.StatusCode.UNAUTHENTICATED] * 2


def test_a_new_limit_applies_to_the_next_request(replicas):
    created = replicas.admin("POST", "/api/keys", json={
        "name": "tightened", "rate_limits": {"requests_per_minute": 1000}})
    secret = created["secret"]
    _clear_of_a_minute_turning()
    assert [_direct_chat(t, secret) for t in replicas.routers] == [grpc.StatusCode.OK] * 2
    replicas.admin("PATCH", f"/api/keys/{created['key']['key_id']}",
                   json={"rate_limits": {"requests_per_minute": 3}})
    codes = [_direct_chat(t, secret) for t in replicas.routers * 2]
    # 2 used of the new 3 before the change: one more is served, by whichever router asks first.
    assert codes.count(grpc.StatusCode.OK) == 1
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 3


def test_the_openai_sdk_reads_429_retry_after_and_the_ratelimit_headers(replicas):
    secret = replicas.key(requests_per_minute=2, tokens_per_minute=100_000)
    client = openai.OpenAI(base_url=replicas.edge.url + "/v1", api_key=secret, max_retries=0)
    _clear_of_a_minute_turning()
    raw = client.chat.completions.with_raw_response.create(**CHAT)
    assert raw.parse().choices[0].message.content
    headers = raw.headers
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert 0 < int(headers["x-ratelimit-remaining-tokens"]) < 100_000
    assert headers["x-ratelimit-reset-tokens"].endswith("s")
    with client.chat.completions.with_streaming_response.create(**CHAT, stream=True) as streamed:
        assert streamed.headers["x-ratelimit-remaining-requests"] == "0"
        assert b"[DONE]" in b"".join(streamed.iter_bytes())
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**CHAT)
    error = refused.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.type == "requests" and "requests per minute (RPM)" in error.message
    assert 1 <= int(error.response.headers["retry-after"]) <= 60
    assert error.response.headers["x-ratelimit-limit-requests"] == "2"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
