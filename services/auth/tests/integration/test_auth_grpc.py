"""AuthService through a real gRPC server and channel, on SQLite and PostgreSQL, with real NATS."""

from __future__ import annotations

import asyncio
import secrets

import grpc
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.events.v1 import events_pb2

from switchboard_auth import bootstrap, server
from switchboard_auth.settings import AuthSettings

MASTER = "sk-master-" + secrets.token_urlsafe(24)
DEAD_NATS = "nats://127.0.0.1:1"  # nothing listens there: auth must start and serve anyway
# The PostgreSQL database is shared by the whole run, so every auth started here shares one hash
# secret (one with another secret would refuse to start: test_auth_replicas.py).
HASH_SECRET = "test-hash-secret-" + secrets.token_hex(16)


def admin(key: str = MASTER):
    return (("authorization", f"Bearer {key}"),)


def trailers(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    return dict(exc.trailing_metadata() or ())


@pytest.fixture
async def start_auth(tmp_path):
    """Start auth in-process on a free port; returns (stub, app). Everything stops at the end."""
    running = []

    async def start(database_url: str, nats_url: str = DEAD_NATS, master_key: str = MASTER,
                    **settings):
        settings.setdefault("hash_secret", HASH_SECRET)
        cfg = AuthSettings(data_dir=tmp_path, database_url=database_url, master_key=master_key,
                           nats_url=nats_url, **settings)
        app = await bootstrap.build(cfg)
        grpc_server, _health = server.create(app)
        port = grpc_server.add_insecure_port("127.0.0.1:0")
        await grpc_server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        running.append((grpc_server, channel, app))
        return auth_pb2_grpc.AuthServiceStub(channel), app

    yield start
    for grpc_server, channel, app in reversed(running):
        await channel.close()
        await grpc_server.stop(None)
        await app.close()


async def test_admission_and_key_lifecycle(start_auth, database_url):
    stub, _ = await start_auth(database_url)

    verdict = await stub.Authorize(auth_pb2.AuthorizeRequest(key=MASTER, model="gpt-4o"), timeout=5)
    assert (verdict.key_id, verdict.tenant_id, verdict.is_admin) == ("master", "default", True)
    assert verdict.cache_ttl_seconds == 30 and verdict.role == "admin"

    created = await stub.CreateKey(auth_pb2.CreateKeyRequest(
        name="ci", allowed_models=["gpt-4o*"], metadata={"team": "ml"}),
        metadata=admin(), timeout=5)
    assert created.secret.startswith("sk-sb-") and len(created.secret) == 55
    assert created.key.key_id.startswith("key_") and created.key.key_prefix == created.secret[:8]
    assert created.key.key_hint == f"{created.secret[:8]}...{created.secret[-4:]}"
    assert created.key.role == "member" and created.key.HasField("updated_at")
    assert created.key.metadata == {"team": "ml"}

    ok = await stub.Authorize(auth_pb2.AuthorizeRequest(key=created.secret, model="gpt-4o-mini"),
                              timeout=5)
    assert ok.key_id == created.key.key_id and not ok.is_admin
    assert list(ok.allowed_models) == ["gpt-4o*"]
    assert not ok.rate_limits.HasField("requests_per_minute")
    assert not ok.HasField("expires_at")

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Authorize(auth_pb2.AuthorizeRequest(key=created.secret, model="claude-3-opus"),
                             timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.value.details() == "This key may not use model 'claude-3-opus'."
    assert trailers(err.value).items() >= {"x-http-status": "403", "x-error-type": "permission_error",
                                           "x-error-code": "model_not_allowed",
                                           "x-error-param": "model"}.items()

    revoked = await stub.RevokeKey(auth_pb2.RevokeKeyRequest(key_id=created.key.key_id),
                                   metadata=admin(), timeout=5)
    assert revoked.HasField("revoked_at")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Authorize(auth_pb2.AuthorizeRequest(key=created.secret, model="gpt-4o"),
                             timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert trailers(err.value)["x-error-code"] == "key_revoked"
    assert trailers(err.value)["x-http-status"] == "401"


async def test_unknown_and_missing_keys(start_auth, tmp_path):
    stub, _ = await start_auth(f"sqlite:///{tmp_path / 'auth.db'}")
    for key, code in (("", "missing_api_key"), ("sk-sb-unknown", "invalid_api_key")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Authorize(auth_pb2.AuthorizeRequest(key=key, model="m"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert trailers(err.value)["x-error-code"] == code


async def test_admin_rpcs_need_an_admin_key(start_auth, tmp_path):
    stub, _ = await start_auth(f"sqlite:///{tmp_path / 'auth.db'}")
    plain = await stub.CreateKey(auth_pb2.CreateKeyRequest(name="p"), metadata=admin(), timeout=5)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListKeys(auth_pb2.ListKeysRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert trailers(err.value)["x-error-code"] == "missing_api_key"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListKeys(auth_pb2.ListKeysRequest(), metadata=admin("sk-sb-wrong"), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert trailers(err.value)["x-error-code"] == "invalid_api_key"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateKey(auth_pb2.CreateKeyRequest(), metadata=admin(plain.secret), timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.value.details() == "admin key required"
    assert trailers(err.value)["x-error-code"] == "admin_key_required"


async def test_validation_tenants_and_listing(start_auth, database_url):
    stub, _ = await start_auth(database_url)
    tenant_id = f"acme-{secrets.token_hex(4)}"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateKey(auth_pb2.CreateKeyRequest(tenant_id=tenant_id), metadata=admin(),
                             timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # bad input: a 400
    assert trailers(err.value)["x-error-param"] == "tenant_id"

    tenant = await stub.CreateTenant(auth_pb2.CreateTenantRequest(name="Acme", tenant_id=tenant_id),
                                     metadata=admin(), timeout=5)
    assert tenant.tenant_id == tenant_id and tenant.HasField("created_at")
    listed = await stub.ListTenants(auth_pb2.ListTenantsRequest(), metadata=admin(), timeout=5)
    assert {"default", tenant_id} <= {t.tenant_id for t in listed.tenants}

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateKey(auth_pb2.CreateKeyRequest(allowed_models=["a*b"]), metadata=admin(),
                             timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(err.value)["x-error-param"] == "allowed_models[0]"
    assert trailers(err.value)["x-http-status"] == "400"

    made = []
    for i in range(5):
        created = await stub.CreateKey(auth_pb2.CreateKeyRequest(
            name=f"k{i}", tenant_id=tenant_id, expires_in_seconds=3600), metadata=admin(), timeout=5)
        assert created.key.HasField("expires_at")
        made.append(created.key.key_id)
    seen, token = [], ""
    while True:
        page = await stub.ListKeys(auth_pb2.ListKeysRequest(tenant_id=tenant_id, page_size=2,
                                                            page_token=token),
                                   metadata=admin(), timeout=5)
        assert len(page.keys) <= 2
        seen += [k.key_id for k in page.keys]
        token = page.next_page_token
        if not token:
            break
    assert seen == made  # oldest first, each once
    got = await stub.GetKey(auth_pb2.GetKeyRequest(key_id=made[0]), metadata=admin(), timeout=5)
    assert got.name == "k0" and got.tenant_id == tenant_id

    updated = await stub.UpdateKey(auth_pb2.UpdateKeyRequest(
        key_id=made[0], name="renamed", allowed_models=["gpt-4o"], expires_at=Timestamp()),
        metadata=admin(), timeout=5)
    assert updated.name == "renamed" and list(updated.allowed_models) == ["gpt-4o"]
    assert not updated.HasField("expires_at")  # the epoch cleared it

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetKey(auth_pb2.GetKeyRequest(key_id="key_missing"), metadata=admin(), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_quota_rpcs_lease_return_and_charge(start_auth, database_url):
    stub, _ = await start_auth(database_url)
    created = await stub.CreateKey(auth_pb2.CreateKeyRequest(
        name="limited", rate_limits=auth_pb2.RateLimits(
            requests_per_minute=3, tokens_per_minute=1000, tokens_per_day=1500,
            max_parallel_requests=2)), metadata=admin(), timeout=5)
    key_id = created.key.key_id
    verdict = await stub.Authorize(auth_pb2.AuthorizeRequest(key=created.secret), timeout=5)
    assert (verdict.rate_limits.requests_per_minute, verdict.rate_limits.tokens_per_day,
            verdict.rate_limits.max_parallel_requests) == (3, 1500, 2)

    lease = await stub.LeaseQuota(auth_pb2.LeaseQuotaRequest(
        key_id=key_id, replica_id="r1", requests=5, tokens=800, parallel_requests=3), timeout=5)
    assert (lease.requests_granted, lease.tokens_granted, lease.parallel_requests_granted) == (
        3, 800, 2)
    assert (lease.requests_remaining, lease.tokens_remaining, lease.tokens_remaining_today) == (
        0, 200, 700)
    assert lease.parallel_requests_held == 2
    window = lease.window_started_at.ToSeconds()
    assert window % 60 == 0 and lease.window_ends_at.ToSeconds() == window + 60
    assert lease.day_window_ends_at.ToSeconds() % 86400 == 0
    assert lease.HasField("parallel_lease_expires_at")

    back = await stub.ReturnQuota(auth_pb2.ReturnQuotaRequest(
        key_id=key_id, replica_id="r1", window_started_at=lease.window_started_at, requests=1,
        tokens=300, parallel_requests=1), timeout=5)
    assert (back.tokens_returned, back.parallel_requests_returned) == (300, 1)
    assert back.requests_returned in (0, 1)  # 0 only if the minute turned meanwhile
    charged = await stub.ChargeTokens(auth_pb2.ChargeTokensRequest(
        key_id=key_id, replica_id="r1", tokens=100), timeout=5)
    assert charged.HasField("tokens_remaining_today")

    plain = await stub.CreateKey(auth_pb2.CreateKeyRequest(name="free"), metadata=admin(),
                                 timeout=5)
    free = await stub.LeaseQuota(auth_pb2.LeaseQuotaRequest(
        key_id=plain.key.key_id, replica_id="r1", requests=10, tokens=10), timeout=5)
    assert (free.requests_granted, free.tokens_granted) == (10, 10)
    assert not free.HasField("requests_remaining")  # no limit, nothing to count down

    await stub.RevokeKey(auth_pb2.RevokeKeyRequest(key_id=key_id), metadata=admin(), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LeaseQuota(auth_pb2.LeaseQuotaRequest(key_id=key_id, requests=1), timeout=5)
    assert trailers(err.value)["x-error-code"] == "key_revoked"


async def test_rotation_tenants_and_roles_over_grpc(start_auth, database_url):
    stub, _ = await start_auth(database_url)
    tenant_id = f"t-{secrets.token_hex(4)}"
    tenant = await stub.CreateTenant(auth_pb2.CreateTenantRequest(
        name="T", tenant_id=tenant_id, default_rate_limits=auth_pb2.RateLimits(
            requests_per_minute=9)), metadata=admin(), timeout=5)
    assert tenant.default_rate_limits.requests_per_minute == 9
    boss = await stub.CreateKey(auth_pb2.CreateKeyRequest(
        name="boss", tenant_id=tenant_id, role="tenant_admin", user_id="u1"), metadata=admin(),
        timeout=5)
    assert boss.key.effective_rate_limits.requests_per_minute == 9
    assert not boss.key.rate_limits.HasField("requests_per_minute")
    mine = await stub.CreateKey(auth_pb2.CreateKeyRequest(name="app"), metadata=admin(
        boss.secret), timeout=5)
    assert (mine.key.tenant_id, mine.key.role) == (tenant_id, "member")
    listed = await stub.ListKeys(auth_pb2.ListKeysRequest(), metadata=admin(boss.secret),
                                 timeout=5)
    assert {k.key_id for k in listed.keys} == {boss.key.key_id, mine.key.key_id}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetKey(auth_pb2.GetKeyRequest(key_id="master"), metadata=admin(boss.secret),
                          timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    rotated = await stub.RotateKey(auth_pb2.RotateKeyRequest(
        key_id=mine.key.key_id, grace_period_seconds=3600), metadata=admin(boss.secret),
        timeout=5)
    assert rotated.secret != mine.secret and rotated.HasField("previous_secret_expires_at")
    assert rotated.key.previous_secret_expires_at == rotated.previous_secret_expires_at
    old = await stub.Authorize(auth_pb2.AuthorizeRequest(key=mine.secret), timeout=5)
    assert old.expires_at == rotated.previous_secret_expires_at
    await stub.Authorize(auth_pb2.AuthorizeRequest(key=rotated.secret), timeout=5)

    updated = await stub.UpdateTenant(auth_pb2.UpdateTenantRequest(
        tenant_id=tenant_id, default_rate_limits=auth_pb2.RateLimits(requests_per_minute=0)),
        metadata=admin(), timeout=5)
    assert not updated.default_rate_limits.HasField("requests_per_minute")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DeleteTenant(auth_pb2.DeleteTenantRequest(tenant_id=tenant_id),
                                metadata=admin(), timeout=5)
    assert trailers(err.value)["x-http-status"] == "409"
    for key_id in (boss.key.key_id, mine.key.key_id):
        await stub.RevokeKey(auth_pb2.RevokeKeyRequest(key_id=key_id), metadata=admin(),
                             timeout=5)
    await stub.DeleteTenant(auth_pb2.DeleteTenantRequest(tenant_id=tenant_id), metadata=admin(),
                            timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetTenant(auth_pb2.GetTenantRequest(tenant_id=tenant_id), metadata=admin(),
                             timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_new_master_key_replaces_the_old_one(start_auth, tmp_path):
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    stub, app = await start_auth(url)
    await stub.Authorize(auth_pb2.AuthorizeRequest(key=MASTER), timeout=5)
    new_master = "sk-master-" + secrets.token_urlsafe(24)
    stub2, _ = await start_auth(url, master_key=new_master)  # same data dir: same hash secret
    assert (await stub2.Authorize(auth_pb2.AuthorizeRequest(key=new_master), timeout=5)).is_admin
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub2.Authorize(auth_pb2.AuthorizeRequest(key=MASTER), timeout=5)
    assert trailers(err.value)["x-error-code"] == "invalid_api_key"


async def test_key_changes_are_announced_on_nats(start_auth, tmp_path, nats_url, eventually):
    subject = f"sbtest.{secrets.token_hex(6)}.keys.changed"
    nc = await nats.connect(nats_url)
    received: asyncio.Queue = asyncio.Queue()

    async def on_event(msg):
        received.put_nowait(events_pb2.KeysChanged.FromString(msg.data))

    await nc.subscribe(subject, cb=on_event)
    try:
        stub, app = await start_auth(f"sqlite:///{tmp_path / 'auth.db'}", nats_url=nats_url,
                                     keys_changed_subject=subject)

        async def connected():
            return app.notifier.connected

        await eventually(connected)
        created = await stub.CreateKey(auth_pb2.CreateKeyRequest(name="n"), metadata=admin(),
                                       timeout=5)
        await stub.UpdateKey(auth_pb2.UpdateKeyRequest(key_id=created.key.key_id, name="m"),
                             metadata=admin(), timeout=5)
        await stub.RotateKey(auth_pb2.RotateKeyRequest(key_id=created.key.key_id),
                             metadata=admin(), timeout=5)
        await stub.RevokeKey(auth_pb2.RevokeKeyRequest(key_id=created.key.key_id),
                             metadata=admin(), timeout=5)
        events = [await asyncio.wait_for(received.get(), 5) for _ in range(4)]
        assert [e.change for e in events] == [events_pb2.KEY_CHANGE_CREATED,
                                              events_pb2.KEY_CHANGE_UPDATED,
                                              events_pb2.KEY_CHANGE_ROTATED,
                                              events_pb2.KEY_CHANGE_REVOKED]
        assert {(e.key_id, e.tenant_id) for e in events} == {(created.key.key_id, "default")}
        assert all(e.HasField("occurred_at") for e in events)

        # A tenant's new default limits change every verdict of its keys: one event, key_id "".
        await stub.CreateTenant(auth_pb2.CreateTenantRequest(tenant_id="ev"), metadata=admin(),
                                timeout=5)
        await stub.UpdateTenant(auth_pb2.UpdateTenantRequest(
            tenant_id="ev", default_rate_limits=auth_pb2.RateLimits(tokens_per_day=9)),
            metadata=admin(), timeout=5)
        await stub.DeleteTenant(auth_pb2.DeleteTenantRequest(tenant_id="ev"), metadata=admin(),
                                timeout=5)
        tenant_events = [await asyncio.wait_for(received.get(), 5) for _ in range(2)]
        assert [(e.key_id, e.tenant_id, e.change) for e in tenant_events] == [
            ("", "ev", events_pb2.KEY_CHANGE_TENANT_UPDATED),
            ("", "ev", events_pb2.KEY_CHANGE_TENANT_DELETED)]
    finally:
        await nc.close()


async def test_auth_serves_while_nats_is_down(start_auth, tmp_path):
    stub, app = await start_auth(f"sqlite:///{tmp_path / 'auth.db'}", nats_url=DEAD_NATS)
    created = await stub.CreateKey(auth_pb2.CreateKeyRequest(), metadata=admin(), timeout=5)
    assert not app.notifier.connected  # the change is stored; routers expire it by TTL
    assert (await stub.Authorize(auth_pb2.AuthorizeRequest(key=created.secret), timeout=5)).key_id
