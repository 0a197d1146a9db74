"""Thirty seconds of load through the real edge on a model of three deployments, one of which
fails about half its calls: the clients see at least 99.9 % success (each failed attempt is
failed over to a healthy deployment), and once the flaky deployment's breaker has opened (by its
failure rate: half failing rarely makes three failures in a row) it gets at most 5 % of the
attempts, probes and the calls that re-open it included."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import yaml
from switchboard_stack import Stack, StackConfig

from tests.e2e.conftest import PROVIDER_KEY

LOAD_SECONDS = 30
CLIENTS = 4
DEPLOYMENTS = ("flaky", "steady-a", "steady-b")


@pytest.fixture(scope="module")
def trio(tmp_path_factory, fake_openai):
    tmp = tmp_path_factory.mktemp("under-load")
    openai = {"type": "openai", "base_url": fake_openai, "api_key": PROVIDER_KEY}
    config = {
        "providers": {"openai": openai},
        "models": [{"name": "trio", "strategy": "load_balanced", "deployments": [
            {"provider": "openai", "model": "gpt-4o-mini+flaky-50", "name": "flaky"},
            {"provider": "openai", "model": "gpt-4o-mini", "name": "steady-a"},
            {"provider": "openai", "model": "gpt-4o-mini", "name": "steady-b"}]}],
        # The defaults but a shorter rest, so the thirty seconds hold several half-open probes.
        "routing": {"cooldown_seconds": 8},
    }
    path = tmp / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    s = Stack(StackConfig.ephemeral(tmp / "stack", env={"OPENAI_API_KEY": PROVIDER_KEY},
                                    own_nats=True, config_path=path))
    s.start()
    yield s
    s.stop()


def _attempts(stack, client: httpx.Client) -> dict[str, tuple[int, str]]:
    """Per deployment: attempts so far and breaker state, from /api/routing/stats."""
    resp = client.get(stack.edge_url + "/api/routing/stats", timeout=10,
                      headers={"authorization": f"Bearer {stack.master_key}"})
    assert resp.status_code == 200, resp.text
    return {d["deployment"]: (d["requests"], d["circuit_state"])
            for d in resp.json()["deployments"] if d["deployment"] in DEPLOYMENTS}


def test_a_deployment_failing_half_its_calls_costs_the_clients_nothing(trio):
    statuses: list[int] = []
    stop = threading.Event()

    def client_loop() -> None:
        body = {"model": "trio", "messages": [{"role": "user", "content": "hello"}]}
        headers = {"authorization": f"Bearer {trio.master_key}"}
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                resp = client.post(trio.edge_url + "/v1/chat/completions", json=body,
                                   headers=headers)
                statuses.append(resp.status_code)

    workers = [threading.Thread(target=client_loop, daemon=True) for _ in range(CLIENTS)]
    for w in workers:
        w.start()
    opened_at: dict[str, tuple[int, str]] | None = None
    with httpx.Client() as stats_client:
        end = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < end:
            seen = _attempts(trio, stats_client)
            if opened_at is None and seen["flaky"][1] != "closed":
                opened_at = seen  # the breaker's first opening: the share is counted from here
            time.sleep(0.25)
        stop.set()
        for w in workers:
            w.join(30)
        final = _attempts(trio, stats_client)

    assert len(statuses) >= 500, "too little load to judge"
    ok = statuses.count(200)
    assert ok / len(statuses) >= 0.999, f"{len(statuses) - ok} of {len(statuses)} failed"
    assert opened_at is not None, "the flaky deployment's breaker never opened"
    after = {name: final[name][0] - opened_at[name][0] for name in DEPLOYMENTS}
    share = after["flaky"] / sum(after.values())
    assert share <= 0.05, f"the flaky deployment still got {share:.1%} of attempts: {after}"
    assert after["steady-a"] > 0 and after["steady-b"] > 0  # both healthy ones kept serving
