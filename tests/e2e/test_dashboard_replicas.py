"""Two dashboard replicas behind the real edge: a browser keeps reaching the replica that holds
its session (the edge's affinity cookie), so a login form's CSRF token is checked where it was
issued. Without the affinity the edge balances round robin and that POST is a 403."""

from __future__ import annotations

import sys
import time
import urllib.request

import httpx
import pytest

from edge.render import SERVICES, EdgeConfig
from edge.routes import DASHBOARD_AFFINITY_COOKIE
from switchboard_stack.config import free_port
from switchboard_stack.processes import ManagedProcess, http_ok
from tests.e2e.dashboard_client import Browser, csrf
from tests.e2e.edge_alone import REPO, Edge, start_scripted_upstream


def _healthy_dashboards(edge: Edge) -> int:
    with urllib.request.urlopen(edge.admin_url + "/clusters", timeout=2) as reply:
        lines = reply.read().decode().splitlines()
    return sum(1 for line in lines if line.startswith("dashboard::") and line.endswith("health_flags::healthy"))


@pytest.fixture
def two_replicas(tmp_path):
    upstream, port = start_scripted_upstream()
    ports = [free_port(), free_port()]
    edge = Edge(EdgeConfig(upstreams=dict.fromkeys(SERVICES, f"127.0.0.1:{port}"),
                           dashboard_target=",".join(f"127.0.0.1:{p}" for p in ports)), tmp_path / "envoy.log")
    replicas = [ManagedProcess(f"dashboard-{p}", [sys.executable, "-m", "switchboard_dashboard"],
                               {"SWITCHBOARD_DASHBOARD_HTTP_PORT": str(p), "SWITCHBOARD_DASHBOARD_EDGE_URL": edge.url,
                                "PATH": "/usr/bin:/bin"}, tmp_path / f"dashboard-{p}.log", cwd=REPO)
                for p in ports]
    try:
        for replica in replicas:
            replica.start()
        for replica, p in zip(replicas, ports, strict=True):
            replica.wait_ready(http_ok(f"http://127.0.0.1:{p}/ui/healthz"), 30)
        edge.wait_healthy()
        deadline = time.monotonic() + 10
        while _healthy_dashboards(edge) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _healthy_dashboards(edge) == 2
        yield edge
    finally:
        edge.close()
        for replica in replicas:
            replica.terminate()
            replica.wait_stopped(10)
        upstream.stop(None)


def test_a_browser_stays_with_the_replica_that_holds_its_session(two_replicas):
    for _ in range(8):  # each a new browser, so each gets its own affinity cookie
        browser = Browser(two_replicas.url)
        try:
            form = browser.get("/ui/login")
            assert DASHBOARD_AFFINITY_COOKIE in browser.http.cookies
            tokens = {csrf(browser.get("/ui/login").text) for _ in range(4)} | {csrf(form.text)}
            assert len(tokens) == 1, "a reload reached another replica: a new session each time"
            answer = browser.submit(form, "/ui/login", api_key="sk-sb-" + "0" * 49)
            # The replica that issued the token checked it: the key is judged (the scripted upstream
            # is no auth, so the key cannot be checked: 503), never refused as a forged form (403).
            assert answer.status_code in (401, 503), answer.status_code
        finally:
            browser.close()
    plain = httpx.get(two_replicas.url + "/ui/healthz")
    assert plain.status_code == 200
