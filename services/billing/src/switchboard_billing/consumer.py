"""The usage consumer: a durable JetStream pull consumer that prices each request's usage, stores
it once and settles its budgets in the same transaction.

Exactly-once storage (and settlement) comes from two halves: a message is acked only after the transaction that
stored it committed (so nothing acked is lost; SQLite commits with synchronous=FULL), and the
insert skips event ids already stored (so a redelivery, or a re-send from a router's journal, is
not counted twice).

Acks: each message is acked on its own (AckExplicit), but without waiting for each: the acks of
a batch are buffered and leave in one write. AckAll would ack a whole batch with one message, but
with several billing replicas on one durable consumer it also acks the messages *another* replica
fetched and has not committed yet: a crash of that replica would then lose them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from opentelemetry.trace import SpanKind
from switchboard_common import events, tracing

from switchboard_billing import settlement
from switchboard_billing.domain import UsageEntry, utc_now
from switchboard_billing.metrics import UsageMetrics
from switchboard_billing.pricing import PriceBook
from switchboard_billing.records import MalformedEvent, entry_from_payload, priced
from switchboard_billing.repository import UsageRepository
from switchboard_billing.settings import BillingSettings
from switchboard_billing.writes import Writer

_log = structlog.get_logger("consumer")
EVENTS = Counter("switchboard_billing_usage_events_total", "usage.recorded messages handled",
                 ["result"])  # stored, duplicate, malformed, retried, unstorable

_RETRY_SECONDS = 2.0


class UsageConsumer:
    def __init__(self, repo: UsageRepository, writer: Writer, prices: PriceBook,
                 settings: BillingSettings, *, on_alerts: Callable[[], None] = lambda: None,
                 metrics: UsageMetrics | None = None) -> None:
        self._repo = repo
        self._writer = writer
        self._prices = prices
        self._on_alerts = on_alerts
        self._metrics = metrics or UsageMetrics(settings.metrics_key_labels)
        self._s = settings
        self._nc: NATS | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._consuming = False

    def start(self) -> None:
        """Consume in the background; while NATS is unreachable this keeps trying, and the
        gRPC API serves what is stored."""
        self._task = asyncio.create_task(self._run(), name="usage-consumer")

    async def stop(self) -> None:
        """Let the batch in hand commit and be acked, then close the connection."""
        self._stopping.set()
        if self._task is not None:
            if not self._consuming:
                self._task.cancel()  # still connecting: nothing in hand to finish
            try:
                await asyncio.wait_for(asyncio.shield(self._task),
                                       self._s.fetch_timeout_seconds + 10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with suppress(asyncio.CancelledError):
                    await self._task
        if self._nc is not None and not self._nc.is_closed:
            with suppress(Exception):  # push out the last acks; unsent ones are redelivered
                await self._nc.flush(timeout=1)
            await self._nc.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            sub = None
            try:
                if self._nc is None:
                    # Returns once NATS answers; the client retries until then.
                    self._nc = await events.connect(self._s.nats_url, name="switchboard-billing")
                js = self._nc.jetstream()
                await self._ensure_stream(js)
                sub = await js.pull_subscribe(
                    self._s.usage_subject, durable=self._s.consumer_durable,
                    stream=self._s.usage_stream, config=self._consumer_config())
                _log.info("consuming usage", stream=self._s.usage_stream,
                          subject=self._s.usage_subject, durable=self._s.consumer_durable)
                self._consuming = True
                await self._consume(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the consumer outlives any one failure
                _log.warning("usage consumer failed; retrying", error=type(exc).__name__,
                             detail=str(exc)[:200])
                self._consuming = False
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _RETRY_SECONDS)
            finally:
                if sub is not None:
                    with suppress(Exception):
                        await sub.unsubscribe()

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        """Create the stream if it is missing (one replica, for `make run`); deployment's own
        stream is kept as it is, and what differs is logged."""
        # A stream named in settings (tests, side-by-side suites) is shaped like USAGE.
        subjects = None if self._s.usage_stream == events.USAGE_STREAM else [self._s.usage_subject]
        await events.ensure_stream(js, events.usage_stream_config(self._s.usage_stream, subjects))

    def _consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._s.ack_wait_seconds, max_ack_pending=self._s.max_ack_pending,
            filter_subject=self._s.usage_subject)

    async def _consume(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            try:
                messages = await sub.fetch(self._s.fetch_batch,
                                           timeout=self._s.fetch_timeout_seconds)
            except TimeoutError:
                continue
            await self.handle(messages)
            if len(messages) < self._s.fetch_batch:
                # A short batch means we are keeping up: wait a little so the next transaction
                # stores many rows. Each batch costs a commit and a pull round trip; one row per
                # batch spent ~0.9 ms of CPU per request at 500 req/s (make bench).
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._s.batch_linger_seconds)

    async def handle(self, messages: Sequence[Msg]) -> None:
        """Store one fetched batch in one transaction, then ack; terminate what cannot parse.
        Traced (when on) as one CONSUMER span linked to each event's producer span."""
        if not tracing.enabled():
            await self._handle(messages)
            return
        links = [link for msg in messages for link in tracing.link_to(msg.headers)]
        with tracing.tracer("switchboard_billing").start_as_current_span(
                f"process {events.USAGE_RECORDED}", kind=SpanKind.CONSUMER, links=links,
                attributes={"messaging.system": "nats",
                            "messaging.batch.message_count": len(messages)}):
            await self._handle(messages)

    async def _handle(self, messages: Sequence[Msg]) -> None:
        batch: list[tuple[UsageEntry, Msg]] = []
        for msg in messages:
            try:
                entry = entry_from_payload(msg.data, received_at=_stream_time(msg))
                batch.append((priced(entry, self._prices), msg))
            except MalformedEvent as exc:
                _log.error("malformed usage event terminated", error=str(exc),
                           stream_seq=_stream_seq(msg))
                EVENTS.labels("malformed").inc()
                await msg.term()
        if not batch:
            return
        try:
            stored = await self.store([entry for entry, _ in batch])
        except Exception as exc:  # noqa: BLE001 - sorted below: bad rows vs. a sick database
            if _is_data_error(exc):
                await self._store_one_by_one(batch)
                return
            _log.warning("storing usage failed; redelivering", error=type(exc).__name__,
                         messages=len(batch), delay_seconds=self._s.nak_delay_seconds)
            EVENTS.labels("retried").inc(len(batch))
            for _, msg in batch:
                await msg.nak(delay=self._s.nak_delay_seconds)
            return
        for _, msg in batch:
            await msg.ack()  # buffered, not awaited for a reply: the batch's acks leave together
        EVENTS.labels("stored").inc(stored)
        EVENTS.labels("duplicate").inc(len(batch) - stored)

    async def store(self, entries: Sequence[UsageEntry]) -> int:
        """Store priced entries and settle the new ones in one transaction; returns how many
        were new."""
        async with self._writer.begin() as conn:
            new = await self._repo.insert_in(conn, entries)
            fresh = list({e.event_id: e for e in reversed(entries) if e.event_id in new}.values())
            alerts = await settlement.settle(self._writer, conn, fresh, utc_now())
        self._metrics.count(fresh)
        if alerts:
            self._on_alerts()
        return len(new)

    async def _store_one_by_one(self, batch: list[tuple[UsageEntry, Msg]]) -> None:
        # One row the database refuses (the same way every time) must not hold back the others.
        for entry, msg in batch:
            try:
                EVENTS.labels("stored").inc(await self.store([entry]))
            except Exception as exc:  # noqa: BLE001
                if not _is_data_error(exc):
                    await msg.nak(delay=self._s.nak_delay_seconds)
                    EVENTS.labels("retried").inc()
                    continue
                _log.error("unstorable usage event terminated", event_id=entry.event_id,
                           error=type(exc).__name__, detail=str(exc)[:200])
                EVENTS.labels("unstorable").inc()
                await msg.term()
                continue
            await msg.ack()


def _is_data_error(exc: Exception) -> bool:
    """Refused for what the row holds (it would fail again), not for the database's health."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def _stream_time(msg: Msg):
    try:
        return msg.metadata.timestamp
    except Exception:  # noqa: BLE001 - not a JetStream message (unit tests): now will do
        return utc_now()


def _stream_seq(msg: Msg) -> int | None:
    try:
        return msg.metadata.sequence.stream
    except Exception:  # noqa: BLE001
        return None
