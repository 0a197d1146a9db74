"""Routers stop and restart under load without failing a request: on SIGTERM a router says
NOT_SERVING but keeps accepting for its lame duck, longer than the edge takes to notice, then
drains; the edge retries a request refused before any byte was sent on the other router.

Two router processes behind one edge, ~100 requests a second. SWITCHBOARD_E2E_LONG=1 runs the
rolling restart for 30 s instead of one round.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import aiohttp
import httpx
import pytest

from edge.render import SERVICES, EdgeConfig
from switchboard_stack.config import free_port
from switchboard_stack.processes import ManagedProcess, grpc_serving
from tests.e2e.conftest import REPO, _start_stack
from tests.e2e.edge_alone import Edge

LAME_DUCK_SECONDS = 3.0  # > EdgeConfig().health_detection_seconds (2 s)
RATE = 100  # requests a second
LONG = os.environ.get("SWITCHBOARD_E2E_LONG") == "1"
CHAT = {"model": "switchboard-local", "messages": [{"role": "user", "content": "keep going"}]}


@dataclass
class Result:
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all
    detail: str = ""


@dataclass
class Load:
    """Paced requests (not a closed loop: a stall shows as failures, not as fewer requests), every
    fourth one streamed, from a thread of its own while the test restarts processes."""

    url: str
    key: str
    results: list[Result] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)

    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status != 200]

    def served_between(self, start: float, end: float) -> int:
        return sum(1 for r in self.results if r.status == 200 and start <= r.ended <= end)

    async def _run(self) -> None:
        headers = {"authorization": f"Bearer {self.key}"}
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as session:
            tasks, n = set(), 0
            begin = time.monotonic()
            while not self._stop.is_set():
                n += 1
                task = asyncio.create_task(self._one(session, stream=n % 4 == 0))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(max(0.0, begin + n / RATE - time.monotonic()))
            await asyncio.gather(*tasks)

    async def _one(self, session: aiohttp.ClientSession, stream: bool) -> None:
        started = time.monotonic()
        try:
            async with session.post(self.url + "/v1/chat/completions", json={**CHAT, "stream": stream}) as resp:
                body = await resp.read()
                ok = resp.status == 200 and (not stream or body.endswith(b"data: [DONE]\n\n"))
                self.results.append(Result(started, time.monotonic(), resp.status if ok else -resp.status,
                                           "" if ok else body[:300].decode(errors="replace")))
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.results.append(Result(started, time.monotonic(), 0, repr(exc)))


@dataclass
class TwoRouters:
    stack: object
    routers: list[ManagedProcess]
    edge: Edge

    def target(self, router: ManagedProcess) -> str:
        return f"127.0.0.1:{router.env['SWITCHBOARD_ROUTER_GRPC_PORT']}"

    def healthy_routers(self) -> int:
        body = httpx.get(self.edge.url + "/healthz?verbose").json()
        assert "services" in body, body
        return body["services"]["router"]["healthy_hosts"]

    def wait_until(self, healthy: int, timeout: float = 15) -> float:
        deadline = time.monotonic() + timeout
        while self.healthy_routers() != healthy:
            assert time.monotonic() < deadline, f"the edge never saw {healthy} healthy routers"
            time.sleep(0.05)
        return time.monotonic()

    def start_again(self, router: ManagedProcess) -> None:
        router.start()
        router.wait_ready(grpc_serving(self.target(router), SERVICES["router"]), 30)

    def restart(self, router: ManagedProcess) -> tuple[float, float]:
        """SIGTERM one router, start it again on its port once it exited; returns (when it
        exited, when the edge had it back)."""
        router.terminate()
        assert router.wait_stopped(LAME_DUCK_SECONDS + 15) == 0
        exited = time.monotonic()
        self.start_again(router)
        return exited, self.wait_until(2)


@pytest.fixture(scope="module")
def two_routers(tmp_path_factory, fake_openai):
    data = tmp_path_factory.mktemp("two-routers")
    stack = _start_stack(data / "stack", fake_openai,
                         {"SWITCHBOARD_SHUTDOWN_LAME_DUCK_SECONDS": str(LAME_DUCK_SECONDS)})
    first = stack.services["router"]
    # Same configuration, its own port and data directory (its own usage outbox).
    second_target = f"127.0.0.1:{free_port()}"
    env = {**first.env, "SWITCHBOARD_ROUTER_GRPC_PORT": second_target.rsplit(":", 1)[1],
           "SWITCHBOARD_ROUTER_METRICS_PORT": str(free_port()),
           "SWITCHBOARD_ROUTER_DATA_DIR": str(data / "router-2")}
    second = ManagedProcess("router-2", first.argv, env, stack.logs / "router-2.log", cwd=REPO)
    edge = None
    try:
        second.start()
        second.wait_ready(grpc_serving(second_target, SERVICES["router"]), 30)
        upstreams = {name: stack.config.target(name) for name in SERVICES}
        upstreams["router"] = f"{stack.config.target('router')},{second_target}"
        edge = Edge(EdgeConfig(upstreams=upstreams), data / "edge.log")
        edge.wait_healthy()
        setup = TwoRouters(stack, [first, second], edge)
        setup.wait_until(2)
        yield setup
    finally:
        if edge:
            edge.close()
        second.terminate(signal.SIGINT)
        second.wait_stopped(15)
        stack.stop()


def test_rolling_restart_under_load_fails_no_request(two_routers):
    setup = two_routers
    with Load(setup.edge.url, setup.stack.master_key) as load:
        time.sleep(1)
        deadline = time.monotonic() + (30 if LONG else 0)
        windows = []
        while True:
            for router in setup.routers:
                windows.append(setup.restart(router))
                time.sleep(0.5)
            if time.monotonic() >= deadline:
                break
    failures = load.failures()
    assert failures == [], f"{len(failures)} of {len(load.results)} failed, first: {failures[0]}"
    elapsed = load.results[-1].started - load.results[0].started
    assert len(load.results) >= 0.8 * RATE * elapsed  # the load kept its pace throughout
    # While one router was down the other one served (the retry and the edge's health checks
    # sent everything there), and each came back into service.
    assert all(load.served_between(exited, back) > 0 for exited, back in windows)


def test_both_routers_in_lame_duck_still_serve(two_routers):
    """What a lone router does on SIGTERM: with every host NOT_SERVING the edge still routes to
    them (and /healthz says the router is not ready) until they stop accepting."""
    setup = two_routers
    with Load(setup.edge.url, setup.stack.master_key) as load:
        time.sleep(0.5)
        for router in setup.routers:
            router.terminate()
        sent = time.monotonic()
        setup.wait_until(0)
        health = httpx.get(setup.edge.url + "/healthz")
        time.sleep(max(0.0, sent + LAME_DUCK_SECONDS - 0.5 - time.monotonic()))
    assert (health.status_code, health.json()) == (503, {"status": "unhealthy", "not_ready": ["router"]})
    assert load.failures() == []
    assert load.served_between(sent, sent + LAME_DUCK_SECONDS) > RATE
    for router in setup.routers:
        assert router.wait_stopped(15) == 0
        setup.start_again(router)
    setup.wait_until(2)


def test_the_edge_retries_a_refused_connection_on_the_other_router(two_routers):
    setup = two_routers
    victim = setup.routers[1]
    os.kill(victim.pid, signal.SIGKILL)  # gone at once: the edge still thinks it healthy
    victim.wait_stopped(5)
    headers = {"authorization": f"Bearer {setup.stack.master_key}"}
    with httpx.Client(base_url=setup.edge.url, headers=headers, timeout=10) as client:
        statuses = [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(40)]
    assert statuses == [200] * 40
    setup.start_again(victim)
    setup.wait_until(2)
