"""`python -m bench.billing_consumer`: billing's usage consumer throughput, in events per second.

Publishes BENCH_BILLING_EVENTS usage events (default 20,000; every other one for a key with a
budget, so settlement is measured too) to a private JetStream stream, then times one consumer
pricing, storing and settling them on a fresh SQLite file until the stream is drained. NATS is
SWITCHBOARD_TEST_NATS_URL (default nats://127.0.0.1:4222); without it the bench says so and
measures the consumer's batches straight from memory instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.events.v1 import events_pb2

from switchboard_billing.budget_store import BudgetStore
from switchboard_billing.catalog import GenaiPricesCatalog
from switchboard_billing.consumer import UsageConsumer
from switchboard_billing.domain import BudgetSpec
from switchboard_billing.migrations import HISTORY
from switchboard_billing.price_config import PriceOverrides
from switchboard_billing.pricing import PriceBook
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings
from switchboard_billing.writes import Writer
from switchboard_common import db, migrations
from switchboard_common.testing import infra


def events(count: int) -> list[bytes]:
    at = Timestamp()
    at.FromDatetime(datetime.now(UTC))
    return [events_pb2.UsageRecorded(
        event_id=secrets.token_hex(12), request_id=f"bench-{i}", occurred_at=at,
        key_id="budgeted" if i % 2 else f"key-{i % 50}", tenant_id="bench", model="gpt-4o-mini",
        provider="openai", upstream_model="gpt-4o-mini", prompt_tokens=30, completion_tokens=20,
        total_tokens=50, outcome=events_pb2.OUTCOME_SUCCESS).SerializeToString()
        for i in range(count)]


class _Msg:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def ack(self) -> None: ...

    async def nak(self, delay=None) -> None: ...

    async def term(self) -> None: ...


async def measure(count: int, nats_url: str | None) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'billing.db'}"
        await migrations.upgrade(url, HISTORY)
        engine = db.create_engine(url, sqlite_synchronous="FULL")
        writer = Writer(engine)
        await BudgetStore(writer).replace(BudgetSpec(
            scope="key", scope_id="budgeted", limits={"monthly": (10**12, None)}), datetime.now(UTC))
        prices = PriceBook(PriceOverrides(), GenaiPricesCatalog())
        tag = secrets.token_hex(4)
        settings = BillingSettings(data_dir=Path(tmp), nats_url=nats_url or "nats://127.0.0.1:1",
                                   usage_stream=f"BENCH_USAGE_{tag}",
                                   usage_subject=f"bench.{tag}.usage", consumer_durable=f"b{tag}",
                                   batch_linger_seconds=0.0)
        consumer = UsageConsumer(UsageRepository(engine), writer, prices, settings)
        payloads = events(count)
        try:
            if nats_url is None:
                started = time.perf_counter()
                for i in range(0, count, settings.fetch_batch):
                    batch: list = [_Msg(p) for p in payloads[i:i + settings.fetch_batch]]
                    await consumer.handle(batch)
                return count / (time.perf_counter() - started), "in memory (no NATS)"
            return await _through_jetstream(consumer, settings, payloads), "JetStream"
        finally:
            await engine.dispose()


async def _through_jetstream(consumer: UsageConsumer, settings: BillingSettings,
                             payloads: list[bytes]) -> float:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=settings.usage_stream, subjects=[settings.usage_subject]))
    try:
        for start in range(0, len(payloads), 500):
            await asyncio.gather(*(js.publish(settings.usage_subject, p)
                                   for p in payloads[start:start + 500]))
        started = time.perf_counter()
        consumer.start()
        while True:
            await asyncio.sleep(0.05)
            try:
                info = await js.consumer_info(settings.usage_stream, settings.consumer_durable)
            except Exception:  # noqa: BLE001 - not made yet
                continue
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
        elapsed = time.perf_counter() - started
        await consumer.stop()
        return len(payloads) / elapsed
    finally:
        await js.delete_stream(settings.usage_stream)
        await nc.close()


def line() -> str:
    count = int(os.environ.get("BENCH_BILLING_EVENTS", "20000"))
    nats_url = infra.nats_url()
    reachable = infra.reachable(nats_url)
    rate, how = asyncio.run(measure(count, nats_url if reachable else None))
    return (f"billing consumer: {rate:,.0f} events/s ({count:,} events through {how}, priced, "
            "stored and settled on SQLite with synchronous=FULL)")


if __name__ == "__main__":
    print(line())
    sys.exit(0)
