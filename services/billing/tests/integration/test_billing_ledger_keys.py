"""The ledger's key is the router's event id (a reused x-request-id is two rows), billing's SQLite
commits are durable before it acks, and an existing stream is left as deployment made it."""

from __future__ import annotations

from datetime import UTC, datetime

from nats.js.api import StreamConfig
from sqlalchemy import text

from switchboard_common import db, events, migrations

from switchboard_billing import bootstrap
from switchboard_billing.consumer import UsageConsumer
from switchboard_billing.domain import UsageEntry, UsageFilter
from switchboard_billing.migrations import HISTORY
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings

AT = datetime(2025, 5, 1, tzinfo=UTC)


async def test_rows_are_keyed_by_event_id_and_request_ids_may_repeat(database_url):
    await migrations.upgrade(database_url, HISTORY)
    engine = db.create_engine(database_url)
    repo = UsageRepository(engine)
    tenant = f"t-{datetime.now().timestamp()}"
    try:
        one = UsageEntry(event_id=f"{tenant}-e1", request_id="same-id", occurred_at=AT,
                         tenant_id=tenant, total_tokens=3)
        two = UsageEntry(event_id=f"{tenant}-e2", request_id="same-id", occurred_at=AT,
                         tenant_id=tenant, total_tokens=4)
        assert await repo.insert([one, two, one]) == 2
        assert await repo.insert([two]) == 0  # a redelivery is stored once
        rows = await repo.list_usage(UsageFilter(tenant_id=tenant), None, 10)
        assert sorted(r.event_id for r in rows) == [one.event_id, two.event_id]
        assert {r.request_id for r in rows} == {"same-id"}
        page = await repo.list_usage(UsageFilter(tenant_id=tenant), None, 1)
        rest = await repo.list_usage(UsageFilter(tenant_id=tenant),
                                     (page[0].occurred_at, page[0].event_id), 10)
        assert [r.event_id for r in page + rest] == [two.event_id, one.event_id]  # no row lost
    finally:
        await engine.dispose()


async def test_billing_commits_sqlite_with_synchronous_full(tmp_path):
    app = await bootstrap.build(BillingSettings(data_dir=tmp_path), consume=False)
    try:
        async with app.engine.connect() as conn:
            level = (await conn.execute(text("PRAGMA synchronous"))).scalar()
        assert level == 2  # FULL
    finally:
        await app.close()


async def test_an_existing_stream_is_compared_not_overwritten(usage_stream, tmp_path):
    stream, subject, nc = usage_stream
    js = nc.jetstream()
    # Deployment bounded it differently (and the fixture made it without our max_age).
    await js.update_stream(StreamConfig(name=stream, subjects=[subject], duplicate_window=120.0,
                                        max_msgs=1000))
    consumer = UsageConsumer(None, None, None, BillingSettings(data_dir=tmp_path, usage_stream=stream,
                                                   usage_subject=subject))
    await consumer._ensure_stream(js)
    info = await js.stream_info(stream)
    assert (info.config.duplicate_window, info.config.max_msgs) == (120.0, 1000)
    differences = events.stream_differences(
        info.config, events.usage_stream_config(stream, [subject]))
    assert any(d.startswith("duplicate_window") for d in differences)
    assert any(d.startswith("max_age") for d in differences)
