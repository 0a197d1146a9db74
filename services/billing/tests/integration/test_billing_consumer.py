"""The usage consumer on real JetStream: every request stored exactly once, across duplicates,
redeliveries and restarts, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.api import StreamConfig
from switchboard.events.v1 import events_pb2

from switchboard_common import db, migrations

from switchboard_billing.consumer import UsageConsumer
from switchboard_billing.price_config import PriceOverrides
from switchboard_billing.pricing import PriceBook
from switchboard_billing.writes import Writer
from switchboard_billing.migrations import HISTORY
from switchboard_billing.domain import SpendTotals, UsageFilter
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings
from switchboard_billing.tables import metadata
from switchboard_common.ports import free_port

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-haiku")
OUTCOMES = (events_pb2.OUTCOME_SUCCESS, events_pb2.OUTCOME_SUCCESS, events_pb2.OUTCOME_ERROR,
            events_pb2.OUTCOME_CLIENT_ABORT)


def make_events(tenant: str, start: int, count: int) -> list[events_pb2.UsageRecorded]:
    made = []
    for i in range(start, start + count):
        at = Timestamp()
        at.FromDatetime(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i))
        outcome = OUTCOMES[i % len(OUTCOMES)]
        # A failed call here is one the provider refused: no tokens (one it worked on has some).
        prompt, completion = (0, 0) if outcome == events_pb2.OUTCOME_ERROR else (10 + i % 7, 3 * (i % 11))
        made.append(events_pb2.UsageRecorded(
            request_id=f"{tenant}-req-{i}", occurred_at=at, key_id=f"{tenant}-key-{i % 3}",
            tenant_id=tenant, model=MODELS[i % len(MODELS)], provider="fake",
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
            outcome=outcome, latency_ms=100 + i))
    return made


# No prices here (the catalog is off): refused calls are free and known, the rest unknown.
NO_PRICES = PriceBook(PriceOverrides(use_catalog=False), None)


def totals_of(events) -> SpendTotals:
    errors = sum(e.outcome == events_pb2.OUTCOME_ERROR for e in events)
    return SpendTotals(
        requests=len(events), prompt_tokens=sum(e.prompt_tokens for e in events),
        completion_tokens=sum(e.completion_tokens for e in events),
        total_tokens=sum(e.total_tokens for e in events), cost_micros_usd=0,
        errors=errors, unpriced_requests=len(events) - errors)


class CountingRepo:
    """The real repository; counts the entries handed to it and can fail chosen calls, before
    the commit or (through `writer`) after it."""

    def __init__(self, inner: UsageRepository, failures=()) -> None:
        self.inner, self.failures, self.calls, self.entries_seen = inner, list(failures), 0, 0
        self.fail_after_commit = False

    def insert_in(self, conn, entries):
        self.calls += 1
        self.entries_seen += len(entries)
        failure = self.failures.pop(0) if self.failures else None
        if failure == "before_commit":
            raise ConnectionError("database unreachable")
        self.fail_after_commit = failure == "after_commit"
        return self.inner.insert_in(conn, entries)

    def writer(self, engine) -> Writer:
        repo = self

        class AfterCommitFailure(Writer):
            async def run(self, work):
                result = await super().run(work)
                if repo.fail_after_commit:  # committed, but the acks never go out
                    repo.fail_after_commit = False
                    raise ConnectionError("lost the connection after commit")
                return result

        return AfterCommitFailure(engine)


@pytest.fixture
async def rig(tmp_path, database_url, usage_stream, nats_url):
    """A repository on the test database and a way to run consumers on the private stream."""
    stream, subject, nc = usage_stream
    # Migrated, not create_all: the PostgreSQL database is shared with tests that migrate it.
    await migrations.upgrade(database_url, HISTORY)
    engine = db.create_engine(database_url)
    durable = f"billing_{secrets.token_hex(4)}"
    settings = BillingSettings(
        data_dir=tmp_path, database_url=database_url, nats_url=nats_url, usage_stream=stream,
        usage_subject=subject, consumer_durable=durable, fetch_batch=8, max_ack_pending=64,
        fetch_timeout_seconds=0.2, nak_delay_seconds=0.2)
    consumers: list[UsageConsumer] = []

    class Rig:
        repo = UsageRepository(engine)
        js = nc.jetstream()
        tenant = f"t{secrets.token_hex(4)}"

        @staticmethod
        def start(repo) -> UsageConsumer:
            consumer = UsageConsumer(repo, repo.writer(engine), NO_PRICES, settings)
            consumer.start()
            consumers.append(consumer)
            return consumer

        @staticmethod
        async def publish(event, msg_id: str):
            return await Rig.js.publish(subject, event.SerializeToString(),
                                        headers={"Nats-Msg-Id": msg_id})

        @staticmethod
        async def publish_batch(records, batch_id: str):
            batch = events_pb2.UsageBatch(batch_id=batch_id, records=records)
            return await Rig.js.publish(f"{subject}.batch", batch.SerializeToString(),
                                        headers={"Nats-Msg-Id": batch_id})

        @staticmethod
        async def publish_raw(payload: bytes):
            return await Rig.js.publish(subject, payload)

        @staticmethod
        async def drained() -> bool:
            for name in (durable, f"{durable}-batches"):  # single events, and batches
                try:
                    info = await Rig.js.consumer_info(stream, name)
                except nats.js.errors.NotFoundError:
                    return False
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        @staticmethod
        async def spend() -> SpendTotals:
            return (await Rig.repo.spend(UsageFilter(tenant_id=Rig.tenant))).totals

    yield Rig
    for consumer in consumers:
        await consumer.stop()
    await engine.dispose()


async def test_every_request_is_stored_exactly_once(rig, eventually):
    first = make_events(rig.tenant, 0, 30)
    for e in first:
        assert not (await rig.publish(e, e.request_id)).duplicate
    for e in first[:5]:  # a re-send JetStream itself drops (same message id)
        assert (await rig.publish(e, e.request_id)).duplicate
    for e in first[5:10]:  # the same requests under new message ids: only billing can drop them
        assert not (await rig.publish(e, f"{e.request_id}-resent")).duplicate
    await rig.publish_raw(b"\xffnot a usage event")  # terminated, never blocks the stream

    repo = CountingRepo(rig.repo)
    consumer = rig.start(repo)
    await eventually(rig.drained)
    assert await rig.spend() == totals_of(first)
    assert repo.entries_seen == 35  # 30 events + 5 re-sent under new ids; dedup dropped the rest
    await consumer.stop()

    # A restart resumes the durable consumer where it stopped: old messages are not re-read.
    second = make_events(rig.tenant, 30, 10)
    for e in second:
        await rig.publish(e, e.request_id)
    for e in first[10:15]:
        await rig.publish(e, f"{e.request_id}-again")
    repo = CountingRepo(rig.repo)
    rig.start(repo)
    await eventually(rig.drained)
    assert repo.entries_seen == 15
    assert await rig.spend() == totals_of(first + second)
    by_model = dict((await rig.repo.spend(UsageFilter(tenant_id=rig.tenant))).by_model)
    assert by_model == {m: totals_of([e for e in first + second if e.model == m]) for m in MODELS}


async def test_batches_and_single_events_of_a_rolling_upgrade_are_stored_once(rig, eventually):
    events = make_events(rig.tenant, 0, 40)
    for e in events[:10]:  # a router from before batching
        await rig.publish(e, e.request_id)
    # Batches published before this billing version first ran still reach it: its batch
    # consumer starts at the beginning of the stream.
    await rig.publish_batch(events[10:25], "batch-1")
    repo = CountingRepo(rig.repo)
    consumer = rig.start(repo)
    await rig.publish_batch(events[25:40], "batch-2")
    await rig.publish_batch(events[20:30], "batch-3")  # a journal's re-send in a new batch
    assert (await rig.publish_batch(events[25:40], "batch-2")).duplicate  # JetStream drops it
    await eventually(rig.drained)
    assert await rig.spend() == totals_of(events)
    assert repo.entries_seen == 50
    await consumer.stop()


async def test_redelivery_after_failures_counts_once(rig, eventually):
    events = make_events(rig.tenant, 0, 12)
    for e in events:
        await rig.publish(e, e.request_id)
    # First the database is down; then a commit lands but its acks are lost.
    repo = CountingRepo(rig.repo, failures=["before_commit", "after_commit"])
    rig.start(repo)
    await eventually(rig.drained)
    assert repo.calls >= 3
    assert repo.entries_seen > len(events)  # redelivered...
    assert await rig.spend() == totals_of(events)  # ...and still stored once


def nats_server_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "nats-server"
    return str(beside_python) if beside_python.exists() else shutil.which("nats-server")


async def test_consumer_waits_for_nats_and_then_consumes(tmp_path, eventually):
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("no nats-server binary to start a private server with")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    engine = db.create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    await db.create_schema(engine, metadata)
    repo = UsageRepository(engine)
    settings = BillingSettings(data_dir=tmp_path, nats_url=url, usage_stream="PRIVATE_USAGE",
                               usage_subject="private.usage.recorded", fetch_timeout_seconds=0.2)
    consumer = UsageConsumer(repo, Writer(engine), NO_PRICES, settings)
    consumer.start()  # NATS is not there yet: this must return and keep trying
    server = None
    try:
        await asyncio.sleep(0.3)
        server = await asyncio.create_subprocess_exec(
            binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(
            name="PRIVATE_USAGE", duplicate_window=600.0,
            subjects=["private.usage.recorded", "private.usage.recorded.batch"]))
        events = make_events("private", 0, 5)
        for e in events:
            await js.publish("private.usage.recorded", e.SerializeToString(),
                             headers={"Nats-Msg-Id": e.request_id})

        async def stored():
            return (await repo.spend(UsageFilter())).totals == totals_of(events)

        await eventually(stored)
        await nc.close()
    finally:
        await consumer.stop()
        if server is not None:
            server.terminate()
            await server.wait()
        await engine.dispose()
