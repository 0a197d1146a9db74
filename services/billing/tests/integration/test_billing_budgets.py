"""Budgets through billing's gRPC API on SQLite and PostgreSQL: set and read (with this period's
spend counted from the ledger), leases granted atomically against a key's and its tenant's
budgets, settled from stored usage, given back, reclaimed, and the alerts their spend queues."""

from __future__ import annotations

import secrets
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import select
from switchboard.billing.v1 import billing_pb2 as pb
from switchboard.events.v1 import events_pb2

from switchboard_billing.domain import UsageEntry, utc_now
from switchboard_billing.leases import Amounts
from switchboard_billing.tables import alert_outbox

from .test_billing_grpc import (  # noqa: F401
    ADMIN,
    KEY_A,
    TENANT_ADMIN,
    bearer,
    billing,
    fake_auth,
    trailers,
)

DOLLAR = 1_000_000


def usage(key: str, tenant: str, cost: int, *, lease: str = "", tokens: int = 10, n: int = 0):
    return UsageEntry(request_id=f"r-{secrets.token_hex(4)}", event_id=secrets.token_hex(8),
                      occurred_at=utc_now() - timedelta(seconds=n), key_id=key, tenant_id=tenant,
                      model="m", prompt_tokens=tokens, total_tokens=tokens, cost_micros_usd=cost,
                      price_unknown=False, outcome="success", budget_lease_id=lease)


async def set_budget(stub, **fields) -> pb.Budget:
    return await stub.SetBudget(pb.SetBudgetRequest(**fields), metadata=bearer(ADMIN), timeout=5)


async def get_budget(stub, **fields) -> pb.Budget:
    return await stub.GetBudget(pb.GetBudgetRequest(**fields), metadata=bearer(ADMIN), timeout=5)


async def lease(stub, key, tenant, usd=0, tokens=0, replica="r1") -> pb.LeaseBudgetResponse:
    return await stub.LeaseBudget(pb.LeaseBudgetRequest(
        key_id=key, tenant_id=tenant, replica_id=replica, amount_micros_usd=usd,
        amount_tokens=tokens), timeout=5)


def limit(budget: pb.Budget, period: int) -> pb.BudgetLimit:
    return next(x for x in budget.limits if x.period == period)


async def test_set_and_read_counts_this_periods_spend_so_far(billing):
    stub, app = billing
    key, tenant = f"k{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    await app.consumer.store([usage(key, tenant, 3 * DOLLAR), usage(key, tenant, 2 * DOLLAR)])
    budget = await set_budget(stub, key_id=key, monthly_limit_micros_usd=10 * DOLLAR,
                              daily_limit_tokens=1000)
    assert budget.exists and budget.key_id == key
    assert (budget.period, budget.limit_micros_usd, budget.spent_micros_usd) == (
        pb.BUDGET_PERIOD_MONTHLY, 10 * DOLLAR, 5 * DOLLAR)
    assert budget.remaining_micros_usd == 5 * DOLLAR and budget.HasField("resets_at")
    assert list(budget.alert_thresholds_percent) == [50, 80, 100]
    daily = limit(budget, pb.BUDGET_PERIOD_DAILY)
    assert not daily.HasField("limit_micros_usd") and daily.limit_tokens == 1000
    assert daily.spent_tokens == 20 and daily.remaining_tokens == 980
    assert daily.resets_at.ToDatetime() - daily.period_started_at.ToDatetime() == timedelta(days=1)
    # Replacing keeps what was spent and drops what is no longer given.
    again = await set_budget(stub, key_id=key, monthly_limit_micros_usd=20 * DOLLAR)
    assert [x.period for x in again.limits] == [pb.BUDGET_PERIOD_MONTHLY]
    assert again.spent_micros_usd == 5 * DOLLAR
    assert (await get_budget(stub, key_id=key)).limit_micros_usd == 20 * DOLLAR
    cleared = await set_budget(stub, key_id=key)
    assert not cleared.exists and not (await get_budget(stub, key_id=key)).limits


async def test_a_lease_is_the_smallest_grant_of_the_key_and_tenant_budgets(billing):
    stub, app = billing
    key, tenant = f"k{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    await set_budget(stub, key_id=key, monthly_limit_micros_usd=10 * DOLLAR)
    await set_budget(stub, tenant_id=tenant, period=pb.BUDGET_PERIOD_DAILY,
                     limit_micros_usd=3 * DOLLAR)
    first = await lease(stub, key, tenant, usd=2 * DOLLAR)
    assert first.lease_id and first.granted_micros_usd == 2 * DOLLAR and first.no_token_limit
    assert not first.no_dollar_limit and first.remaining_micros_usd == 1 * DOLLAR
    second = await lease(stub, key, tenant, usd=2 * DOLLAR)  # the tenant has 1 left
    assert (second.lease_id, second.granted_micros_usd) == (first.lease_id, 1 * DOLLAR)
    assert second.held_micros_usd == 3 * DOLLAR
    # What the key's budget gave beyond the tenant's went straight back.
    assert (await get_budget(stub, key_id=key)).reserved_micros_usd == 3 * DOLLAR
    assert (await get_budget(stub, tenant_id=tenant)).reserved_micros_usd == 3 * DOLLAR
    assert (await lease(stub, key, tenant, usd=DOLLAR)).granted_micros_usd == 0

    # Usage settles the lease: spent grows, reserved shrinks by what the lease held for it.
    await app.consumer.store([usage(key, tenant, DOLLAR // 2, lease=first.lease_id)])
    key_budget = await get_budget(stub, key_id=key)
    assert (key_budget.spent_micros_usd, key_budget.reserved_micros_usd) == (DOLLAR // 2, 5 * DOLLAR // 2)
    back = await stub.ReturnBudget(pb.ReturnBudgetRequest(lease_id=first.lease_id,
                                                          unused_micros_usd=10 * DOLLAR), timeout=5)
    assert back.returned_micros_usd == 5 * DOLLAR // 2
    tenant_budget = await get_budget(stub, tenant_id=tenant)
    assert (tenant_budget.spent_micros_usd, tenant_budget.reserved_micros_usd) == (DOLLAR // 2, 0)
    assert tenant_budget.remaining_micros_usd == 5 * DOLLAR // 2
    # A request that cost more than its lease held is still billed in full.
    await app.consumer.store([usage(key, tenant, 4 * DOLLAR, lease=first.lease_id)])
    assert (await get_budget(stub, tenant_id=tenant)).spent_micros_usd == 9 * DOLLAR // 2


async def test_token_budgets_and_keys_without_budgets(billing):
    stub, _ = billing
    key, tenant = f"k{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    free = await lease(stub, key, tenant, usd=DOLLAR, tokens=100)
    assert free.no_dollar_limit and free.no_token_limit and free.lease_id == ""
    assert free.expires_at.ToDatetime().tzinfo is None  # a Timestamp: it is set
    await set_budget(stub, key_id=key, period=pb.BUDGET_PERIOD_TOTAL, limit_tokens=150)
    grant = await lease(stub, key, tenant, usd=DOLLAR, tokens=100)
    assert grant.no_dollar_limit and not grant.no_token_limit
    assert (grant.granted_micros_usd, grant.granted_tokens) == (0, 100)
    assert (await lease(stub, key, tenant, tokens=100)).granted_tokens == 50
    total = await get_budget(stub, key_id=key)
    assert total.period == pb.BUDGET_PERIOD_TOTAL and not total.HasField("resets_at")
    assert total.reserved_tokens == 150 and total.remaining_tokens == 0


async def test_leases_not_renewed_are_reclaimed(billing):
    stub, app = billing
    key, tenant = f"k{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    await set_budget(stub, key_id=key, monthly_limit_micros_usd=10 * DOLLAR)
    held = await lease(stub, key, tenant, usd=4 * DOLLAR, replica="gone")
    await lease(stub, key, tenant, usd=DOLLAR, replica="alive")
    leases = app.budgets._leases
    await leases.reclaim(utc_now(), grace_seconds=30)  # not expired yet: nothing of ours
    assert (await get_budget(stub, key_id=key)).reserved_micros_usd == 5 * DOLLAR
    later = utc_now() + timedelta(seconds=app_ttl(app) + 31)
    await lease_at(app, key, tenant, "alive", later)  # renewed: survives
    assert await leases.reclaim(later, grace_seconds=30) >= 1  # (the database may hold others)
    assert (await get_budget(stub, key_id=key)).reserved_micros_usd == DOLLAR
    # Usage naming the reclaimed lease is still billed, against the budget's own period.
    await app.consumer.store([usage(key, tenant, DOLLAR, lease=held.lease_id)])
    budget = await get_budget(stub, key_id=key)
    assert (budget.spent_micros_usd, budget.reserved_micros_usd) == (DOLLAR, DOLLAR)


def app_ttl(app) -> float:
    return app.budgets._leases._ttl.total_seconds()


async def lease_at(app, key, tenant, replica, at):
    return await app.budgets._leases.lease(key, tenant, replica, Amounts(0, 0), at)


async def test_spend_crossing_thresholds_queues_each_alert_once(billing):
    stub, app = billing
    key, tenant = f"k{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    await set_budget(stub, key_id=key, monthly_limit_micros_usd=10 * DOLLAR,
                     alert_thresholds_percent=[50, 80, 100], webhook_url="http://127.0.0.1:9/hook",
                     webhook_secret="s3cret")
    stored = [usage(key, tenant, 6 * DOLLAR)]
    await app.consumer.store(stored)  # 60 %: the 50 % alert, on NATS and the webhook
    await app.consumer.store(stored)  # a redelivery settles nothing
    await app.consumer.store([usage(key, tenant, DOLLAR)])  # 70 %: nothing new
    await app.consumer.store([usage(key, tenant, 5 * DOLLAR)])  # 120 %: 80 and 100 at once
    async with app.engine.connect() as conn:
        rows = (await conn.execute(select(alert_outbox))).all()
    alerts = [(r.channel, events_pb2.BudgetAlert.FromString(r.payload)) for r in rows]
    mine = sorted(((c, a) for c, a in alerts if a.key_id == key),
                  key=lambda ca: (ca[0], ca[1].threshold_percent))
    assert [(c, a.threshold_percent) for c, a in mine] == [
        ("nats", 50), ("nats", 80), ("nats", 100), ("webhook", 50), ("webhook", 80), ("webhook", 100)]
    alert = mine[0][1]
    assert (alert.unit, alert.period, alert.limit_micros_usd) == ("usd", "monthly", 10 * DOLLAR)
    assert alert.spent_micros_usd == 6 * DOLLAR and alert.alert_id.endswith(":usd:50")
    budget = await get_budget(stub, key_id=key)
    assert budget.webhook_url == "http://127.0.0.1:9/hook" and budget.remaining_micros_usd == 0


async def test_who_may_read_and_set_budgets(billing):
    stub, _ = billing
    await set_budget(stub, key_id="key_a", monthly_limit_micros_usd=DOLLAR)
    own = await stub.GetBudget(pb.GetBudgetRequest(key_id="key_a"), metadata=bearer(KEY_A), timeout=5)
    assert own.limit_micros_usd == DOLLAR
    for call, request, param in (
            (stub.GetBudget, pb.GetBudgetRequest(key_id="key_b"), "key_id"),
            (stub.GetBudget, pb.GetBudgetRequest(tenant_id="acme"), "tenant_id"),
            (stub.SetBudget, pb.SetBudgetRequest(key_id="key_a", monthly_limit_micros_usd=9), "key_id")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request, metadata=bearer(KEY_A), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert trailers(err.value)["x-error-param"] == param


async def test_a_tenant_admin_manages_its_tenants_keys_only(billing):
    stub, app = billing
    ta = bearer(TENANT_ADMIN)
    await app.consumer.store([usage("key_a", "acme", 3), usage("key_z", "zeta", 5)])
    spend = await stub.GetSpend(pb.GetSpendRequest(), metadata=ta, timeout=5)
    assert spend.totals.cost_micros_usd >= 3 and all(
        g.tenant_id == "acme" for g in (await stub.GetSpend(
            pb.GetSpendRequest(group_by=["tenant"]), metadata=ta, timeout=5)).groups)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetSpend(pb.GetSpendRequest(tenant_id="zeta"), metadata=ta, timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A key in its tenant (auth says so): set and read.
    budget = await stub.SetBudget(pb.SetBudgetRequest(key_id="key_b", daily_limit_micros_usd=7),
                                  metadata=ta, timeout=5)
    assert budget.limits[0].limit_micros_usd == 7
    assert (await stub.GetBudget(pb.GetBudgetRequest(tenant_id="acme"), metadata=ta,
                                 timeout=5)).tenant_id == "acme"
    for request, code in ((pb.SetBudgetRequest(key_id="key_z", daily_limit_micros_usd=7),
                           grpc.StatusCode.NOT_FOUND),
                          (pb.GetBudgetRequest(tenant_id="zeta"), grpc.StatusCode.NOT_FOUND),
                          (pb.SetBudgetRequest(tenant_id="acme", daily_limit_micros_usd=7),
                           grpc.StatusCode.PERMISSION_DENIED)):
        call = stub.SetBudget if isinstance(request, pb.SetBudgetRequest) else stub.GetBudget
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request, metadata=ta, timeout=5)
        assert err.value.code() == code


@pytest.mark.parametrize("fields, param", [
    ({"key_id": "k", "monthly_limit_micros_usd": -1}, "monthly_limit_micros_usd"),
    ({"key_id": "k", "limit_micros_usd": 5}, "period"),
    ({"key_id": "k", "period": pb.BUDGET_PERIOD_DAILY, "daily_limit_tokens": 5}, "period"),
    ({"key_id": "k", "daily_limit_tokens": 5, "alert_thresholds_percent": [0]},
     "alert_thresholds_percent"),
    ({"key_id": "k", "daily_limit_tokens": 5, "webhook_url": "ftp://x"}, "webhook_url"),
    ({"key_id": "k", "daily_limit_tokens": 5, "webhook_secret": "s"}, "webhook_secret"),
])
async def test_bad_budgets_are_400s_naming_the_field(billing, fields, param):
    stub, _ = billing
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await set_budget(stub, **fields)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(err.value)["x-error-param"] == param


