"""The shutdown of `grpc_server.serve` in a real process: SIGTERM gives a lame duck (NOT_SERVING,
still accepting new connections and calls), then the drain; SIGINT or a second signal skips it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchboard_common.ports import free_port

LAME_DUCK_SECONDS = 2.0

_SERVER = textwrap.dedent("""
    import asyncio, sys
    from switchboard_common import grpc_server
    from switchboard_common.settings import CommonSettings

    async def main():
        settings = CommonSettings(grpc_port=int(sys.argv[1]), shutdown_lame_duck_seconds=float(sys.argv[2]),
                                  shutdown_grace_seconds=1)
        server, health = grpc_server.build(["test.v1.TestService"])
        await grpc_server.serve(server, health, settings, ["test.v1.TestService"])

    asyncio.run(main())
""")



def _health(port: int) -> int | None:
    """The status a fresh connection gets, or None when it is refused."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="test.v1.TestService"), timeout=1).status
        except grpc.RpcError:
            return None


@pytest.fixture
def serving():
    def start(lame_duck: float = LAME_DUCK_SECONDS) -> tuple[subprocess.Popen, int]:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(port), str(lame_duck)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        deadline = time.monotonic() + 20
        while _health(port) != health_pb2.HealthCheckResponse.SERVING:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return proc, port

    started: list[subprocess.Popen] = []
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_keeps_accepting_while_not_serving_for_the_lame_duck(serving):
    proc, port = serving()
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    seen = []
    while time.monotonic() - sent < LAME_DUCK_SECONDS - 0.5:
        seen.append(_health(port))  # a new connection and call each time
        time.sleep(0.1)
    assert seen and set(seen[3:]) == {health_pb2.HealthCheckResponse.NOT_SERVING}
    assert proc.wait(10) == 0
    assert time.monotonic() - sent >= LAME_DUCK_SECONDS
    assert _health(port) is None


def test_sigint_skips_the_lame_duck(serving):
    proc, port = serving(lame_duck=30)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def test_a_second_sigterm_ends_the_lame_duck(serving):
    proc, port = serving(lame_duck=30)
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _health(port) != health_pb2.HealthCheckResponse.NOT_SERVING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_services_are_served_as_generic_handlers_only(serving):
    """build() skips the registered methods (one pending future each, waited on per call):
    health and reflection still answer through their generic handlers."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    _, port = serving()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        listed = next(iter(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)))
    assert "test.v1.TestService" in {s.name for s in listed.list_services_response.service}
    assert _health(port) == health_pb2.HealthCheckResponse.SERVING
