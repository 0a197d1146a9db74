"""Fixtures: the guardrails service started as a real process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE_NAME = "switchboard.guardrails.v1.GuardrailsService"
START_TIMEOUT_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """`python -m switchboard_guardrails` in a child process, its logs in a file."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = data_dir / "guardrails.log"
        # Only what this test sets: a developer's SWITCHBOARD_* variables must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env.update({"SWITCHBOARD_GUARDRAILS_GRPC_PORT": str(self.port),
                    "SWITCHBOARD_DATA_DIR": str(data_dir), "SWITCHBOARD_LOG_FORMAT": "json",
                    "PYTHONUNBUFFERED": "1"})
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "switchboard_guardrails"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, channel: grpc.Channel) -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"guardrails exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        pytest.fail(f"guardrails not SERVING after {START_TIMEOUT_SECONDS}s:\n{self.logs()}")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _running(data_dir: Path) -> Iterator[tuple[ServiceProcess, grpc.Channel]]:
    service = ServiceProcess(data_dir)
    try:
        with grpc.insecure_channel(service.target) as channel:
            service.wait_serving(channel)
            yield service, channel
    finally:
        service.kill()


@pytest.fixture(scope="module")
def guardrails(tmp_path_factory) -> Iterator[tuple[ServiceProcess, grpc.Channel]]:
    """One running service shared by a module's read-only tests."""
    yield from _running(tmp_path_factory.mktemp("guardrails"))


@pytest.fixture
def own_guardrails(tmp_path) -> Iterator[tuple[ServiceProcess, grpc.Channel]]:
    """A running service for one test that stops it."""
    yield from _running(tmp_path)
