"""Two auth processes on one database (PostgreSQL across nodes, SQLite on one node) give the
answers one would: concurrent leases never grant more than a limit, and a replica hashing with
another secret refuses to start."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import grpc
import pytest
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

from switchboard_common.testing.processes import ServiceProcess

from switchboard_auth import bootstrap
from switchboard_auth.settings import AuthSettings

SERVICE = "switchboard.auth.v1.AuthService"
MASTER = "sk-master-" + secrets.token_urlsafe(24)


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"SWITCHBOARD_NATS_URL": "nats://127.0.0.1:1", "SWITCHBOARD_MASTER_KEY": MASTER,
            "SWITCHBOARD_AUTH_DATABASE_URL": url, "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.5",
            **extra}


def _start(tmp_path: Path, name: str, env: dict[str, str]) -> ServiceProcess:
    data_dir = tmp_path / name
    data_dir.mkdir()
    return ServiceProcess("auth", SERVICE, data_dir, env)


@pytest.fixture
async def two_replicas(tmp_path, empty_database_url):
    """Two auth processes sharing a database and a hash secret: their stubs."""
    env = _env(empty_database_url,
               SWITCHBOARD_AUTH_HASH_SECRET="replicas-share-this-" + secrets.token_hex(16))
    # Started together: one migrates and records the secret's fingerprint, the other waits and
    # finds both done.
    procs = [_start(tmp_path, "a", env), _start(tmp_path, "b", env)]
    await asyncio.gather(*(asyncio.to_thread(p.wait_serving) for p in procs))
    channels = [grpc.aio.insecure_channel(p.target) for p in procs]
    try:
        yield [auth_pb2_grpc.AuthServiceStub(c) for c in channels]
    finally:
        for channel in channels:
            await channel.close()
        for proc in procs:
            proc.kill()


async def _key(stub, **limits) -> str:
    created = await stub.CreateKey(auth_pb2.CreateKeyRequest(
        name="exact", rate_limits=auth_pb2.RateLimits(**limits)),
        metadata=(("authorization", f"Bearer {MASTER}"),), timeout=10)
    return created.key.key_id


async def _clear_of_a_minute_turning(margin: float = 15.0) -> None:
    """Start a per-minute test early enough in a UTC minute that it ends in the same one."""
    into = time.time() % 60
    if into > 60 - margin:
        await asyncio.sleep(60 - into + 0.05)


async def _leases(stubs, count: int, **ask) -> list[auth_pb2.LeaseQuotaResponse]:
    return await asyncio.gather(*(
        stubs[i % 2].LeaseQuota(auth_pb2.LeaseQuotaRequest(replica_id=f"router-{i % 4}", **ask),
                                timeout=30)
        for i in range(count)))


async def test_concurrent_leases_on_two_replicas_never_pass_a_limit(two_replicas):
    stubs = two_replicas
    # A key made on one replica is known to the other: they share the secret and the database.
    requests_key = await _key(stubs[0], requests_per_minute=50)
    await _clear_of_a_minute_turning()
    granted = await _leases(stubs, 200, key_id=requests_key, requests=1)
    assert len({g.window_started_at.seconds for g in granted}) == 1  # one minute's window
    assert sum(g.requests_granted for g in granted) == 50
    assert sorted({g.requests_granted for g in granted}) == [0, 1]

    tokens_key = await _key(stubs[1], tokens_per_day=5_000)
    granted = await _leases(stubs, 100, key_id=tokens_key, tokens=100)
    assert sum(g.tokens_granted for g in granted) == 5_000  # a UTC day, not a minute: exact
    assert sorted({g.tokens_granted for g in granted}) == [0, 100]

    parallel_key = await _key(stubs[0], max_parallel_requests=7)
    granted = await _leases(stubs, 30, key_id=parallel_key, parallel_requests=1)
    assert sum(g.parallel_requests_granted for g in granted) == 7


# Across nodes is PostgreSQL's case; SQLite shares the check but lives on one node.
@pytest.mark.parametrize("empty_database_url", ["postgres"], indirect=True)
async def test_a_replica_with_another_hash_secret_refuses_to_start(tmp_path, empty_database_url):
    first = _start(tmp_path, "first", _env(empty_database_url,
                                           SWITCHBOARD_AUTH_HASH_SECRET="one-" + "x" * 40))
    try:
        await asyncio.to_thread(first.wait_serving)
        others = [_start(tmp_path, "other", _env(empty_database_url,
                                                 SWITCHBOARD_AUTH_HASH_SECRET="two-" + "y" * 40)),
                  _start(tmp_path, "generated", _env(empty_database_url))]  # its own, generated
        try:
            codes = await asyncio.gather(*(asyncio.to_thread(p.wait_exit, 30) for p in others))
        finally:
            for proc in others:
                proc.kill()
        assert codes == [1, 1]
        for proc in others:
            assert "refuses to start" in proc.logs()
            assert "SWITCHBOARD_AUTH_HASH_SECRET" in proc.logs()
            assert "y" * 40 not in proc.logs() and "x" * 40 not in proc.logs()
        # The first replica is unharmed and still serves.
        async with grpc.aio.insecure_channel(first.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            assert (await stub.Authorize(auth_pb2.AuthorizeRequest(key=MASTER), timeout=5)).is_admin
    finally:
        first.kill()


async def test_a_short_hash_secret_is_refused(tmp_path):
    settings = AuthSettings(data_dir=tmp_path, master_key=MASTER, hash_secret="short",
                            nats_url="nats://127.0.0.1:1")
    with pytest.raises(SystemExit) as stopped:
        await bootstrap.build(settings)
    assert "at least 16 bytes" in str(stopped.value)
