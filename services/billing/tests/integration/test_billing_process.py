"""`python -m switchboard_billing` as the launcher runs it: serves even while NATS is unreachable."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc

SERVICE = "switchboard.billing.v1.BillingService"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_billing_process_serves_without_nats_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({"SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_BILLING_GRPC_PORT": str(port),
                "SWITCHBOARD_NATS_URL": "nats://127.0.0.1:1",  # nothing listens there
                "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.5"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard_billing", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE),
                                               timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, "billing never SERVING"
                await asyncio.sleep(0.1)
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            try:
                await stub.GetSpend(billing_pb2.GetSpendRequest(), timeout=5)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                assert dict(exc.trailing_metadata())["x-error-code"] == "missing_api_key"
            else:
                raise AssertionError("GetSpend without a key must be refused")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()[-2000:]
    logs = (out + err).decode()
    assert '"event": "serving"' in logs and '"event": "stopped"' in logs
    assert (tmp_path / "billing.db").exists()
