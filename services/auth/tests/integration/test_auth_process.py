"""`python -m switchboard_auth` as the launcher runs it: env config, health, secrets kept secret."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import stat
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

SERVICE = "switchboard.auth.v1.AuthService"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(data_dir, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({"SWITCHBOARD_DATA_DIR": str(data_dir), "SWITCHBOARD_LOG_FORMAT": "json",
                "SWITCHBOARD_NATS_URL": "nats://127.0.0.1:1",
                "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.5"})
    env.update(extra)
    return env


async def wait_serving(channel: grpc.aio.Channel, timeout: float = 15.0) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        assert asyncio.get_running_loop().time() < deadline, "auth did not become SERVING"
        await asyncio.sleep(0.1)


async def test_auth_process_serves_and_keeps_keys_secret(tmp_path):
    port, master = free_port(), "sk-master-" + secrets.token_urlsafe(24)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard_auth", stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=service_env(tmp_path, SWITCHBOARD_AUTH_GRPC_PORT=str(port),
                        SWITCHBOARD_MASTER_KEY=master))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel)
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            assert (await stub.Authorize(auth_pb2.AuthorizeRequest(key=master), timeout=5)).is_admin
            created = await stub.CreateKey(auth_pb2.CreateKeyRequest(name="k"), timeout=5,
                                           metadata=(("authorization", f"Bearer {master}"),))
            await stub.Authorize(auth_pb2.AuthorizeRequest(key=created.secret), timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()[-2000:]

    logs = (out + err).decode()
    assert '"event": "serving"' in logs and '"event": "stopped"' in logs
    secret_file = tmp_path / "auth-hash-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("auth.db*"))
    for secret in (master, created.secret):
        assert secret not in logs  # never logged
        assert secret.encode() not in stored  # stored only as a keyed hash


async def test_auth_refuses_to_start_without_a_master_key(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard_auth", stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=service_env(tmp_path, SWITCHBOARD_AUTH_GRPC_PORT=str(free_port())))
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 1
    assert "SWITCHBOARD_MASTER_KEY" in err.decode()
