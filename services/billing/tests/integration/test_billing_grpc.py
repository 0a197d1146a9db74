"""BillingService through a real gRPC server, asking a fake AuthService on a real gRPC port.

The fake speaks auth's proto contract and goes through the same error interceptor as auth, so
billing sees exactly the statuses and trailing metadata the real one sends; auth's own behaviour
is covered by auth's tests.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc

from switchboard_common import grpc_server
from switchboard_common.errors import NotFound, Unauthenticated

from switchboard_billing import bootstrap, server
from switchboard_billing.domain import UsageEntry
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings
from switchboard_common.ports import free_port

ADMIN, KEY_A = "sk-admin-" + secrets.token_hex(8), "sk-a-" + secrets.token_hex(8)
TENANT_ADMIN = "sk-ta-" + secrets.token_hex(8)  # tenant_admin of "acme"
KEY_TENANTS = {"key_a": "acme", "key_b": "acme", "key_z": "zeta"}
T0 = datetime(2025, 6, 1, tzinfo=UTC)


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self) -> None:
        self.calls = 0

    async def Authorize(self, request, context):
        self.calls += 1
        if request.key == ADMIN:
            return auth_pb2.AuthorizeResponse(key_id="master", tenant_id="default", is_admin=True,
                                              cache_ttl_seconds=60)
        if request.key == KEY_A:
            return auth_pb2.AuthorizeResponse(key_id="key_a", tenant_id="acme", role="member",
                                              cache_ttl_seconds=60)
        if request.key == TENANT_ADMIN:
            return auth_pb2.AuthorizeResponse(key_id="key_ta", tenant_id="acme",
                                              role="tenant_admin", cache_ttl_seconds=60)
        raise Unauthenticated("Incorrect API key provided.", code="invalid_api_key")

    async def GetKey(self, request, context):
        # As auth answers a tenant admin: keys of other tenants do not exist for it.
        presented = dict(context.invocation_metadata()).get("authorization", "")
        tenant = KEY_TENANTS.get(request.key_id)
        if tenant is None or (presented == f"Bearer {TENANT_ADMIN}" and tenant != "acme"):
            raise NotFound(f"No key '{request.key_id}'.")
        return auth_pb2.Key(key_id=request.key_id, tenant_id=tenant)


def bearer(key: str):
    return (("authorization", f"Bearer {key}"),)


def trailers(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    return dict(exc.trailing_metadata() or ())


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


@pytest.fixture
async def fake_auth():
    auth_server, _ = grpc_server.build(["switchboard.auth.v1.AuthService"])
    fake = FakeAuth()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(fake, auth_server)
    port = auth_server.add_insecure_port("127.0.0.1:0")
    await auth_server.start()
    yield fake, f"127.0.0.1:{port}"
    await auth_server.stop(None)


@pytest.fixture
async def billing(tmp_path, database_url, fake_auth):
    """Billing in-process (no consumer: rows are stored through its repository) and a stub."""
    _, target = fake_auth
    settings = BillingSettings(data_dir=tmp_path, database_url=database_url, auth_target=target,
                               auth_timeout_seconds=2)
    app = await bootstrap.build(settings, consume=False)
    billing_server, _ = server.create(app)
    port = billing_server.add_insecure_port("127.0.0.1:0")
    await billing_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield billing_pb2_grpc.BillingServiceStub(channel), app
    await channel.close()
    await billing_server.stop(None)
    await app.close()


async def seed(app, tenant: str) -> list[UsageEntry]:
    entries = [UsageEntry(request_id=f"{tenant}-{i}", occurred_at=T0 + timedelta(minutes=i),
                          key_id="key_a" if i % 2 else "key_b", tenant_id=tenant,
                          model=("gpt-4o", "claude-3-haiku")[i % 2 if i < 8 else 0],
                          prompt_tokens=i, completion_tokens=10 * i, total_tokens=11 * i,
                          outcome="error" if i % 4 == 0 else "success", latency_ms=i)
               for i in range(1, 13)]
    await UsageRepository(app.engine).insert(entries)
    return entries


def totals(entries) -> billing_pb2.SpendTotals:
    return billing_pb2.SpendTotals(
        requests=len(entries), prompt_tokens=sum(e.prompt_tokens for e in entries),
        completion_tokens=sum(e.completion_tokens for e in entries),
        total_tokens=sum(e.total_tokens for e in entries), cost_micros_usd=0,
        errors=sum(e.outcome == "error" for e in entries),
        # Stored here without pricing: unknown, never "free".
        price_unknown=bool(entries), unpriced_requests=len(entries))


async def test_admin_reads_spend_and_usage(billing, fake_auth):
    stub, app = billing
    tenant = f"t{secrets.token_hex(4)}"
    entries = await seed(app, tenant)

    spend = await stub.GetSpend(billing_pb2.GetSpendRequest(tenant_id=tenant),
                                metadata=bearer(ADMIN), timeout=5)
    assert spend.totals == totals(entries)
    assert {m.model: m.totals for m in spend.by_model} == {
        model: totals([e for e in entries if e.model == model])
        for model in {e.model for e in entries}}

    window = await stub.GetSpend(billing_pb2.GetSpendRequest(
        tenant_id=tenant, key_id="key_b", model="gpt-4o", start_time=ts(T0 + timedelta(minutes=3)),
        end_time=ts(T0 + timedelta(minutes=10))), metadata=bearer(ADMIN), timeout=5)
    assert window.totals == totals([
        e for e in entries if e.key_id == "key_b" and e.model == "gpt-4o"
        and T0 + timedelta(minutes=3) <= e.occurred_at < T0 + timedelta(minutes=10)])

    seen, token = [], ""
    while True:
        page = await stub.ListUsage(billing_pb2.ListUsageRequest(
            tenant_id=tenant, page_size=5, page_token=token), metadata=bearer(ADMIN), timeout=5)
        seen += list(page.records)
        token = page.next_page_token
        if not token:
            break
    assert [r.request_id for r in seen] == [e.request_id for e in reversed(entries)]
    newest = entries[-1]
    assert (seen[0].occurred_at.ToDatetime(tzinfo=UTC), seen[0].model, seen[0].total_tokens,
            seen[0].outcome) == (newest.occurred_at, newest.model, newest.total_tokens,
                                 newest.outcome)
    assert all(r.price_unknown for r in seen)
    assert fake_auth[0].calls == 1  # the verdict was cached across calls


async def test_a_plain_key_sees_only_its_own_usage(billing):
    stub, app = billing
    tenant = f"t{secrets.token_hex(4)}"
    entries = await seed(app, tenant)
    mine = [e for e in entries if e.key_id == "key_a"]

    spend = await stub.GetSpend(billing_pb2.GetSpendRequest(tenant_id=tenant),
                                metadata=bearer(KEY_A), timeout=5)
    assert spend.totals == totals(mine)
    usage = await stub.ListUsage(billing_pb2.ListUsageRequest(tenant_id=tenant),
                                 metadata=bearer(KEY_A), timeout=5)
    assert {r.key_id for r in usage.records} == {"key_a"} and len(usage.records) == len(mine)

    for call, request in ((stub.GetSpend, billing_pb2.GetSpendRequest(key_id="key_b")),
                          (stub.ListUsage, billing_pb2.ListUsageRequest(key_id="key_b"))):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request, metadata=bearer(KEY_A), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert trailers(err.value)["x-error-param"] == "key_id"



async def test_spend_and_usage_filter_by_provider_period_and_dates(billing):
    """AILB's shapes: ?provider=openai, ?period=monthly|daily, ?start_date=..&end_date=.."""
    stub, app = billing
    tenant = f"t{secrets.token_hex(4)}"
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    when = {"today": today + timedelta(seconds=1), "month_start": month,
            "last_month": month - timedelta(seconds=1),
            "jan_first": datetime(2024, 1, 1, tzinfo=UTC),
            "jan_last": datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC),
            "feb_first": datetime(2024, 2, 1, tzinfo=UTC)}
    entries = [UsageEntry(request_id=f"{tenant}-{name}", occurred_at=at, tenant_id=tenant,
                          key_id="key_a", model="gpt-4o",
                          provider="anthropic" if i % 3 == 0 else "openai", prompt_tokens=i + 1,
                          completion_tokens=2, total_tokens=i + 3, outcome="success")
               for i, (name, at) in enumerate(when.items())]
    await UsageRepository(app.engine).insert(entries)

    async def spend(**fields) -> billing_pb2.SpendTotals:
        reply = await stub.GetSpend(billing_pb2.GetSpendRequest(tenant_id=tenant, **fields),
                                    metadata=bearer(ADMIN), timeout=5)
        return reply.totals

    def of(keep) -> billing_pb2.SpendTotals:
        return totals([e for e in entries if keep(e)])

    assert await spend(provider="openai") == of(lambda e: e.provider == "openai")
    assert (await spend(provider="openai")).requests == 4
    next_month = (month + timedelta(days=32)).replace(day=1)
    assert await spend(period="monthly") == of(lambda e: month <= e.occurred_at < next_month)
    assert await spend(period="daily") == of(
        lambda e: today <= e.occurred_at < today + timedelta(days=1))
    assert await spend(period="total") == totals(entries)
    january = await spend(start_date="2024-01-01", end_date="2024-01-31")
    assert january == of(lambda e: e.occurred_at.year == 2024 and e.occurred_at.month == 1)
    assert january.requests == 2  # the last second of the end date counts
    assert await spend(start_date="2024-01-01", end_date="2024-01-31", provider="anthropic") == of(
        lambda e: e.request_id.endswith("-jan_first"))
    # start_time wins over start_date
    assert await spend(start_date="2024-01-01", end_date="2024-01-31",
                       start_time=ts(when["jan_last"])) == of(
        lambda e: e.request_id.endswith("-jan_last"))

    listed = await stub.ListUsage(billing_pb2.ListUsageRequest(
        tenant_id=tenant, provider="openai", start_date="2024-01-01", end_date="2024-02-01"),
        metadata=bearer(ADMIN), timeout=5)
    assert [r.request_id for r in listed.records] == [
        e.request_id for e in sorted(entries, key=lambda e: e.occurred_at, reverse=True)
        if e.provider == "openai" and e.occurred_at.year == 2024]
    monthly = await stub.ListUsage(billing_pb2.ListUsageRequest(
        tenant_id=tenant, period="monthly"), metadata=bearer(ADMIN), timeout=5)
    assert {r.request_id for r in monthly.records} == {
        e.request_id for e in entries if month <= e.occurred_at < next_month}


@pytest.mark.parametrize(("fields", "param"), [
    ({"start_date": "2024-13-01"}, "start_date"),
    ({"end_date": "2024-01-32"}, "end_date"),
    ({"period": "yearly"}, "period"),
    ({"period": "monthly", "start_date": "2024-01-01"}, "period"),
    ({"start_date": "2024-02-01", "end_date": "2024-01-31"}, "end_date"),
])
async def test_bad_spend_filters_are_400s_naming_the_param(billing, fields, param):
    stub, _ = billing
    for call, request in ((stub.GetSpend, billing_pb2.GetSpendRequest(**fields)),
                          (stub.ListUsage, billing_pb2.ListUsageRequest(**fields))):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request, metadata=bearer(ADMIN), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert trailers(err.value)["x-http-status"] == "400"
        assert trailers(err.value)["x-error-param"] == param
        assert param in err.value.details()

async def test_callers_without_a_valid_key_are_refused(billing, tmp_path):
    stub, _ = billing
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetSpend(billing_pb2.GetSpendRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert trailers(err.value)["x-error-code"] == "missing_api_key"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetSpend(billing_pb2.GetSpendRequest(), metadata=bearer("sk-nope"), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED  # auth's verdict, passed on
    assert trailers(err.value)["x-error-code"] == "invalid_api_key"
    assert err.value.details() == "Incorrect API key provided."


async def test_validation(billing):
    stub, _ = billing
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListUsage(billing_pb2.ListUsageRequest(page_size=-1), metadata=bearer(ADMIN),
                             timeout=5)
    assert trailers(err.value)["x-error-param"] == "page_size"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListUsage(billing_pb2.ListUsageRequest(page_token="forged"),
                             metadata=bearer(ADMIN), timeout=5)
    assert trailers(err.value)["x-error-param"] == "page_token"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetSpend(billing_pb2.GetSpendRequest(start_time=ts(T0), end_time=ts(T0)),
                            metadata=bearer(ADMIN), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(err.value)["x-error-param"] == "end_time"
    # Budgets and leases name what they are for.
    for call, request, param in (
            (stub.GetBudget, billing_pb2.GetBudgetRequest(), "key_id"),
            (stub.SetBudget, billing_pb2.SetBudgetRequest(key_id="k", tenant_id="t"), "tenant_id"),
            (stub.LeaseBudget, billing_pb2.LeaseBudgetRequest(), "key_id"),
            (stub.ReturnBudget, billing_pb2.ReturnBudgetRequest(), "lease_id")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request, metadata=bearer(ADMIN), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert trailers(err.value)["x-error-param"] == param


async def test_auth_down_is_a_503(tmp_path):
    port = free_port()  # a port nothing listens on
    settings = BillingSettings(data_dir=tmp_path, auth_target=f"127.0.0.1:{port}",
                               auth_timeout_seconds=1)
    app = await bootstrap.build(settings, consume=False)
    billing_server, _ = server.create(app)
    bound = billing_server.add_insecure_port("127.0.0.1:0")
    await billing_server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{bound}") as channel:
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetSpend(billing_pb2.GetSpendRequest(), metadata=bearer(ADMIN),
                                    timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert trailers(err.value)["x-http-status"] == "503"
    finally:
        await billing_server.stop(None)
        await app.close()

