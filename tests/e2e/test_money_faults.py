"""The ledger and the budget stay exact through failures: under steady mixed load (stream and
non-stream) on a key with a budget, billing is killed with -9 and restarted, NATS is restarted,
and the router is killed with -9 and restarted. Afterwards every request that got its whole
answer is in the ledger exactly once, every request the crash cut is there at most once and as
`interrupted`, nothing else is, and the budget's spend equals the ledger."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from switchboard_stack.processes import grpc_serving
from tests.e2e.conftest import _start_stack
from tests.e2e.test_money_reports import admin, get
from tests.e2e.test_usage_billing import usage_records

pytestmark = pytest.mark.timeout(300)
BILLING = "switchboard.billing.v1.BillingService"
GATEWAY = "switchboard.gateway.v1.GatewayService"
WORKERS = 4


@pytest.fixture
def own_stack(tmp_path, fake_openai):
    s = _start_stack(tmp_path / "stack", fake_openai)
    yield s
    s.stop()


class Load:
    """Clients sending requests one after another until told to stop; each remembers what it
    sent and whether the whole answer came back."""

    def __init__(self, stack, secret: str) -> None:
        self.stack, self.secret = stack, secret
        self.complete: list[str] = []  # request ids answered in full
        self.cut: list[str] = []  # answered, but with an error or broken off
        self.unanswered = 0  # sent, and no answer came (the edge could not reach the router)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(WORKERS)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            stream = (worker + n) % 2 == 0
            body = {"model": "gpt-4o-mini", "stream": stream, "max_tokens": 30,
                    "messages": [{"role": "user", "content": "steady load under faults "
                                                             "[fake:slow-20]"}]}
            request_id, whole = None, False
            try:
                with httpx.stream("POST", self.stack.base_url + "/chat/completions", json=body,
                                  headers={"authorization": f"Bearer {self.secret}"},
                                  timeout=30) as resp:
                    request_id = resp.headers.get("x-request-id")  # the edge's, as billed
                    text = resp.read().decode()
                    whole = resp.status_code == 200 and (
                        not stream or text.endswith("data: [DONE]\n\n"))
            except httpx.HTTPError:
                pass
            if whole:
                self.complete.append(request_id)
            elif request_id:
                self.cut.append(request_id)
            else:
                self.unanswered += 1  # no answer at all: the router may or may not have seen it
            if not whole:
                time.sleep(0.1)  # a process is down: do not spin

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.complete)
        while len(self.complete) < start + count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.complete) >= start + count, "the gateway stopped answering"


class Witness:
    """A slow stream that has begun (its first chunk arrived, so the router admitted it and its
    journal holds it) when the block runs, so a kill inside the block surely cuts a request."""

    def __init__(self, stack, secret: str) -> None:
        self.stack, self.secret = stack, secret
        self.request_id: str | None = None
        self._begun = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Witness:
        self._thread.start()
        assert self._begun.wait(30), "the witness stream never began"
        time.sleep(0.2)  # past the journal's next write
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join(60)

    def _run(self) -> None:
        body = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 30,
                "messages": [{"role": "user", "content": "cut me [fake:slow-500]"}]}
        try:
            with httpx.stream("POST", self.stack.base_url + "/chat/completions", json=body,
                              headers={"authorization": f"Bearer {self.secret}"},
                              timeout=60) as resp:
                self.request_id = resp.headers.get("x-request-id")
                for _ in resp.iter_raw():
                    self._begun.set()
        except httpx.HTTPError:
            pass  # the kill cuts it: that is the point
        finally:
            self._begun.set()


def kill_9(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.proc.wait(10)


def restart(stack, name: str, service: str) -> None:
    proc = stack.services[name]
    proc.start()
    proc.wait_ready(grpc_serving(stack.config.target(name), service), 60)


def test_kill_billing_restart_nats_kill_router_loses_and_doubles_nothing(own_stack):
    stack = own_stack
    created = httpx.post(stack.edge_url + "/api/keys", headers=admin(stack), timeout=10,
                         json={"name": "faults", "cost_limit_daily": 100}).json()
    key_id, secret = created["key"]["key_id"], created["secret"]
    with Load(stack, secret) as load:
        load.wait_for(20)
        kill_9(stack.services["billing"])  # the router keeps serving from its slice
        load.wait_for(10)
        restart(stack, "billing", BILLING)
        load.wait_for(10)
        stack.own_nats.stop()  # events wait in the router's journal
        load.wait_for(10)
        stack.own_nats.start()
        load.wait_for(10)
        with Witness(stack, secret) as witness:  # one request surely in flight at the kill
            kill_9(stack.services["router"])  # requests in flight are cut
        restart(stack, "router", GATEWAY)
        load.wait_for(20)
    complete, cut = set(load.complete), set(load.cut)
    assert len(complete) >= 80 and (cut or load.unanswered)  # the router's kill cut some

    deadline = time.monotonic() + 60
    records = usage_records(stack, key_id)
    expected = complete | {witness.request_id}
    while not expected <= {r["request_id"] for r in records} and time.monotonic() < deadline:
        time.sleep(0.5)
        records = usage_records(stack, key_id)
    ids = [r["request_id"] for r in records]
    assert len(ids) == len(set(ids)), "a request was counted twice"
    by_id = {r["request_id"]: r for r in records}
    assert complete <= set(by_id), f"lost: {sorted(complete - set(by_id))[:5]}"
    assert all(by_id[i]["outcome"] == "success" for i in complete)
    # The rest were cut: by the router's kill (interrupted, rebuilt from its journal) or with an
    # error; at most one record each, and none for more requests than went unanswered.
    others = [r for i, r in by_id.items() if i not in complete]
    cut.add(witness.request_id)
    assert len([r for r in others if r["request_id"] not in cut]) <= load.unanswered
    assert all(r["outcome"] in ("interrupted", "error", "client_abort") for r in others)
    assert witness.request_id in by_id, "the request in flight at the kill was lost"
    assert by_id[witness.request_id]["outcome"] == "interrupted"

    total = sum(r["cost_micros_usd"] for r in records)
    deadline = time.monotonic() + 30
    budget = get(stack, f"/api/billing/budget/{key_id}").json()
    while budget["spent_micros_usd"] != total and time.monotonic() < deadline:
        time.sleep(0.5)
        budget = get(stack, f"/api/billing/budget/{key_id}").json()
    assert budget["spent_micros_usd"] == total > 0
