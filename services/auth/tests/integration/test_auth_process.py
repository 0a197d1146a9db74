"""`python -m switchboard_auth` as the launcher runs it: env config, health, secrets kept secret."""

from __future__ import annotations

import asyncio
import secrets
import stat

import grpc
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

from switchboard_common.testing.processes import ServiceProcess

SERVICE = "switchboard.auth.v1.AuthService"
ENV = {"SWITCHBOARD_NATS_URL": "nats://127.0.0.1:1",  # nothing listens there
       "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.5"}


async def test_auth_process_serves_and_keeps_keys_secret(tmp_path):
    master = "sk-master-" + secrets.token_urlsafe(24)
    auth = ServiceProcess("auth", SERVICE, tmp_path, {**ENV, "SWITCHBOARD_MASTER_KEY": master})
    try:
        await asyncio.to_thread(auth.wait_serving)
        async with grpc.aio.insecure_channel(auth.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            assert (await stub.Authorize(auth_pb2.AuthorizeRequest(key=master), timeout=5)).is_admin
            created = await stub.CreateKey(auth_pb2.CreateKeyRequest(name="k"), timeout=5,
                                           metadata=(("authorization", f"Bearer {master}"),))
            await stub.Authorize(auth_pb2.AuthorizeRequest(key=created.secret), timeout=5)
        assert await asyncio.to_thread(auth.stop) == 0, auth.logs()[-2000:]
    finally:
        auth.kill()

    logs = auth.logs()
    events = [e["event"] for e in auth.events()]
    assert "serving" in events and "stopped" in events
    # NATS was down throughout: one short warning per kind of error, not a traceback per attempt.
    nats_errors = [e["error"] for e in auth.events() if e["event"] == "nats error"]
    assert nats_errors and len(nats_errors) == len(set(nats_errors))
    assert "Traceback" not in auth.logs()
    secret_file = tmp_path / "auth-hash-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("auth.db*"))
    for secret in (master, created.secret):
        assert secret not in logs  # never logged
        assert secret.encode() not in stored  # stored only as a keyed hash


async def test_auth_refuses_to_start_without_a_master_key(tmp_path):
    auth = ServiceProcess("auth", SERVICE, tmp_path, ENV)
    try:
        assert await asyncio.to_thread(auth.wait_exit) == 1
    finally:
        auth.kill()
    assert "SWITCHBOARD_MASTER_KEY" in auth.logs()
