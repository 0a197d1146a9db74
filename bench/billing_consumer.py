"""`python -m bench.billing_consumer`: billing's usage consumer throughput, in events per second.

Publishes BENCH_BILLING_EVENTS usage events (default 20,000; every other one for a key with a
budget, so settlement is measured too) to a private JetStream stream, in UsageBatch messages of
BENCH_BILLING_BATCH records (default 16, about what one router replica sends every 20 ms at
800 req/s; 1: one usage.recorded message per event, as routers before batching did), fetched
BENCH_BILLING_FETCH messages at a time (default 256; one fetch is one transaction: under
`make bench` at c=64 billing fetches about 7 batches, ~100 records, at a time), with event
ids minted as routers mint them (UUIDv7, ordered by time: random ones cost SQLite's primary-key
index about twice the page writes per commit), then times
one consumer pricing, storing and settling them on a fresh SQLite file until the stream is
drained. NATS is SWITCHBOARD_TEST_NATS_URL (default nats://127.0.0.1:4222); without it the bench
says so and measures the consumer's batches straight from memory instead.
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
from switchboard_common import db, events, migrations
from switchboard_common.testing import infra
from switchboard_router.usage import mint_event_id


def usage_events(count: int) -> list[events_pb2.UsageRecorded]:
    at = Timestamp()
    at.FromDatetime(datetime.now(UTC))
    return [events_pb2.UsageRecorded(
        event_id=mint_event_id(), request_id=f"bench-{i}", occurred_at=at,
        key_id="budgeted" if i % 2 else f"key-{i % 50}", tenant_id="bench", model="gpt-4o-mini",
        provider="openai", upstream_model="gpt-4o-mini", prompt_tokens=30, completion_tokens=20,
        total_tokens=50, outcome=events_pb2.OUTCOME_SUCCESS)
        for i in range(count)]


def messages(subject: str, records: list[events_pb2.UsageRecorded],
             per_batch: int) -> list[tuple[str, bytes]]:
    """(subject, payload) as routers publish them: batches, or one event each."""
    if per_batch <= 1:
        return [(subject, e.SerializeToString()) for e in records]
    return [(events.batch_subject(subject), events_pb2.UsageBatch(
        batch_id=secrets.token_hex(16), records=records[i:i + per_batch]).SerializeToString())
        for i in range(0, len(records), per_batch)]


class _Msg:
    def __init__(self, subject: str, data: bytes) -> None:
        self.subject, self.data, self.headers = subject, data, None

    async def ack(self) -> None: ...

    async def nak(self, delay=None) -> None: ...

    async def term(self) -> None: ...


async def measure(count: int, nats_url: str | None, per_batch: int,
                  per_fetch: int = 256) -> tuple[float, float, str]:
    """(events per second, CPU µs per event of this process, how they came)."""
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
                                   batch_linger_seconds=0.0, fetch_batch=per_fetch,
                                   max_ack_pending=max(4096, per_fetch))
        consumer = UsageConsumer(UsageRepository(engine), writer, prices, settings)
        payloads = messages(settings.usage_subject, usage_events(count), per_batch)
        try:
            if nats_url is None:
                started, cpu = time.perf_counter(), time.process_time()
                for i in range(0, len(payloads), settings.fetch_batch):
                    fetched: list = [_Msg(*p) for p in payloads[i:i + settings.fetch_batch]]
                    await consumer.handle(fetched)
                return (count / (time.perf_counter() - started),
                        (time.process_time() - cpu) / count * 1e6, "in memory (no NATS)")
            rate, cpu_us = await _through_jetstream(consumer, settings, payloads, count)
            return rate, cpu_us, "JetStream"
        finally:
            await writer.close()
            await engine.dispose()


async def _through_jetstream(consumer: UsageConsumer, settings: BillingSettings,
                             payloads: list[tuple[str, bytes]], count: int) -> tuple[float, float]:
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=settings.usage_stream, subjects=[
        settings.usage_subject, events.batch_subject(settings.usage_subject)]))
    try:
        for start in range(0, len(payloads), 500):
            await asyncio.gather(*(js.publish(subject, p)
                                   for subject, p in payloads[start:start + 500]))
        started, cpu = time.perf_counter(), time.process_time()
        consumer.start()
        durables = (settings.consumer_durable, f"{settings.consumer_durable}-batches")
        while True:  # polled: JetStream tells a consumer's backlog only when asked
            if await _drained(js, settings.usage_stream, durables):
                break
            await asyncio.sleep(0.05)
        elapsed, spent = time.perf_counter() - started, time.process_time() - cpu
        await consumer.stop()
        return count / elapsed, spent / count * 1e6
    finally:
        await js.delete_stream(settings.usage_stream)
        await nc.close()


async def _drained(js, stream: str, durables: tuple[str, ...]) -> bool:
    for durable in durables:
        try:
            info = await js.consumer_info(stream, durable)
        except Exception:  # noqa: BLE001 - not made yet
            return False
        if info.num_pending or info.num_ack_pending:
            return False
    return True


def line() -> str:
    count = int(os.environ.get("BENCH_BILLING_EVENTS", "20000"))
    per_batch = int(os.environ.get("BENCH_BILLING_BATCH", "16"))
    per_fetch = int(os.environ.get("BENCH_BILLING_FETCH", "256"))
    nats_url = infra.nats_url()
    reachable = infra.reachable(nats_url)
    rate, cpu_us, how = asyncio.run(measure(count, nats_url if reachable else None, per_batch,
                                            per_fetch))
    shape = f"batches of {per_batch}" if per_batch > 1 else "one message each"
    shape += f", {per_fetch} messages a fetch"
    return (f"billing consumer: {rate:,.0f} events/s, {cpu_us:,.0f} µs CPU per event ({count:,} "
            f"events in {shape} through {how}, priced, stored and settled on SQLite with "
            "synchronous=FULL)")


if __name__ == "__main__":
    print(line())
    sys.exit(0)
