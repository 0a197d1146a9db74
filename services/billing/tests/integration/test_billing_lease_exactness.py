"""The overshoot bound, with two billing processes on one PostgreSQL database and real NATS
JetStream: 50 concurrent requests lease their estimated cost from a budget with room for 10, the
ones granted are served (a usage event naming the lease), the others give back what they got;
the budget ends overshot by at most one request's cost, and nothing stays reserved."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.billing.v1 import billing_pb2 as pb
from switchboard.billing.v1 import billing_pb2_grpc
from switchboard.events.v1 import events_pb2

from switchboard_common import db, migrations
from switchboard_common.testing.processes import ServiceProcess

from switchboard_billing.budget_store import BudgetStore
from switchboard_billing.domain import BudgetSpec
from switchboard_billing.migrations import HISTORY
from switchboard_billing.writes import Writer

SERVICE = "switchboard.billing.v1.BillingService"
COST = 10_000  # micro-dollars: 10 tokens at $1,000 per million
REQUESTS, ROOM = 50, 10


def event(key: str, tenant: str, lease_id: str) -> events_pb2.UsageRecorded:
    at = Timestamp()
    at.FromDatetime(datetime.now(UTC))
    return events_pb2.UsageRecorded(
        event_id=secrets.token_hex(12), request_id=secrets.token_hex(8), occurred_at=at,
        key_id=key, tenant_id=tenant, model="exact-model", provider="fake", prompt_tokens=10,
        total_tokens=10, outcome=events_pb2.OUTCOME_SUCCESS, budget_lease_id=lease_id)


@pytest.mark.postgres
async def test_fifty_concurrent_leases_overshoot_by_at_most_one_request(
        tmp_path, pg_database_url, usage_stream, nats_url, eventually):
    stream, subject, nc = usage_stream
    await migrations.upgrade(pg_database_url, HISTORY)
    key, tenant = f"k{secrets.token_hex(4)}", f"t{secrets.token_hex(4)}"
    limit = ROOM * COST + COST // 2  # room for 10 and a half: the half is granted, then given back
    engine = db.create_engine(pg_database_url)
    store = BudgetStore(Writer(engine))
    await store.replace(BudgetSpec(scope="key", scope_id=key, limits={"monthly": (limit, None)}),
                        datetime.now(UTC))
    config = tmp_path / "switchboard.yaml"
    config.write_text("prices:\n  models:\n    exact-model: {input: 1000, output: 1000}\n")
    env = {"SWITCHBOARD_BILLING_DATABASE_URL": pg_database_url, "SWITCHBOARD_NATS_URL": nats_url,
           "SWITCHBOARD_BILLING_USAGE_STREAM": stream, "SWITCHBOARD_BILLING_USAGE_SUBJECT": subject,
           "SWITCHBOARD_BILLING_CONSUMER_DURABLE": f"exact_{secrets.token_hex(4)}",
           "SWITCHBOARD_BILLING_CONFIG_PATH": str(config),
           "SWITCHBOARD_BILLING_BATCH_LINGER_SECONDS": "0.05",
           "SWITCHBOARD_BILLING_FETCH_TIMEOUT_SECONDS": "0.2"}
    procs = [ServiceProcess("billing", SERVICE, tmp_path / f"b{i}", env) for i in range(2)
             ] if _mkdirs(tmp_path) else []
    channels: list[grpc.aio.Channel] = []
    try:
        await asyncio.gather(*(asyncio.to_thread(p.wait_serving) for p in procs))
        channels = [grpc.aio.insecure_channel(p.target) for p in procs]
        stubs = [billing_pb2_grpc.BillingServiceStub(c) for c in channels]
        js = nc.jetstream()
        start = asyncio.Event()

        async def request(i: int) -> bool:
            stub = stubs[i % 2]
            await start.wait()
            grant = await stub.LeaseBudget(pb.LeaseBudgetRequest(
                key_id=key, tenant_id=tenant, replica_id=f"replica-{i}", amount_micros_usd=COST),
                timeout=20)
            if grant.granted_micros_usd < COST:  # 402: give back what was granted
                await stub.ReturnBudget(pb.ReturnBudgetRequest(
                    lease_id=grant.lease_id, unused_micros_usd=grant.granted_micros_usd),
                    timeout=20)
                return False
            e = event(key, tenant, grant.lease_id)
            await js.publish(subject, e.SerializeToString(), headers={"Nats-Msg-Id": e.event_id})
            return True

        tasks = [asyncio.create_task(request(i)) for i in range(REQUESTS)]
        start.set()
        served = sum(await asyncio.gather(*tasks))
        assert served == ROOM  # grants are exact: every request that fits, and no more

        async def settled():
            standing = (await store.standings("key", key, datetime.now(UTC)))[0]
            return (standing.spent_micros_usd, standing.leased_micros_usd) == (served * COST, 0)

        await eventually(settled, timeout=30)
        standing = (await store.standings("key", key, datetime.now(UTC)))[0]
        assert standing.spent_micros_usd <= limit + COST
        # Both processes took part: the leases and the settling were split between them.
        logs = [p.logs() for p in procs]
        assert all("LeaseBudget" in text for text in logs)
    finally:
        for channel in channels:
            await channel.close()
        for p in procs:
            p.stop(20)
            p.kill()
        await engine.dispose()


def _mkdirs(root) -> bool:
    for i in range(2):
        (root / f"b{i}").mkdir(exist_ok=True)
    return True


