"""Publishing records to JetStream in batches, without waiting for the acks on anyone's path.

`submit` queues a record (its id and payload) and returns. A sender task cuts what waits into
batches, everything submitted within `linger_seconds` of the oldest waiting record and at most
`max_records` each, encodes each once (`encode(batch_id, records)`) and pipelines them with
`publish_async`, the batch id as the message id (Nats-Msg-Id). Acks are collected as they arrive
and handed to `on_acked` as record ids, in batches (one call per loop turn). A batch that fails,
is not acked within `ack_timeout` or waits while NATS is away is sent again as it was (same id,
same records), so JetStream drops a copy that had landed.

Durability is the caller's: records `on_acked` has not named must be kept (the router's journal),
since a queue in memory dies with the process; and the consumer must store each record
idempotently by its id, since records submitted again after a restart travel in new batches.

Why batches: JetStream stores, acks and delivers per message, and the consumer fetches and acks
per message; one message per request cost ~280 µs of NATS CPU and ~335 µs of billing's per
request at c=64 (make bench), most of it per message, not per byte.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge

_log = structlog.get_logger("events")
PUBLISHED = Counter("switchboard_events_published_total", "Events acked by JetStream", ["subject"])
BATCHES = Counter("switchboard_event_batches_published_total",
                  "Batch messages acked by JetStream (each holds one or more events)", ["subject"])
RESENT = Counter("switchboard_events_resent_total",
                 "Batches sent again: failed, unanswered within the ack timeout, or NATS away",
                 ["subject"])
PENDING = Gauge("switchboard_events_pending", "Events not yet acked by JetStream (queued or sent)")


@dataclass(slots=True)
class Record:
    id: str
    payload: bytes
    trace_headers: dict[str, str] | None = None  # W3C traceparent (tracing.py), when traced


Encode = Callable[[str, Sequence[Record]], bytes]


@dataclass(slots=True)
class _Batch:
    id: str
    records: list[Record]
    data: bytes
    sent_at: float = 0.0
    future: asyncio.Future | None = None


class BatchPublisher:
    def __init__(self, subject: str, encode: Encode, *, on_acked: Callable[[list[str]], None],
                 ack_timeout: float = 5.0, max_in_flight: int = 64, max_records: int = 256,
                 linger_seconds: float = 0.02, retry_seconds: float = 1.0) -> None:
        self._subject = subject
        self._encode = encode
        self._on_acked = on_acked
        self._ack_timeout = ack_timeout
        self._max_in_flight = max_in_flight  # batches awaiting their ack at once
        self._max_records = max_records
        self._linger = linger_seconds
        self._retry_seconds = retry_seconds
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._waiting: list[Record] = []  # submitted, not yet in a batch
        self._first_at = 0.0  # when the oldest waiting record came (monotonic)
        self._queue: deque[_Batch] = deque()  # cut, to send (re-sends first)
        self._in_flight: dict[str, _Batch] = {}
        self._unacked = 0  # records submitted and not yet acked
        self._acked: list[str] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()  # a batch's worth waits, or a drain wants everything now
        self._hurry = False  # draining: no lingering
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_after = 0.0
        self._tasks: list[asyncio.Task] = []
        self._published = PUBLISHED.labels(subject)  # labels() per ack costs
        self._batches = BATCHES.labels(subject)
        PENDING.set_function(lambda: self._unacked)

    @property
    def pending(self) -> int:
        """Records not yet acked (waiting, in a batch to send, or sent)."""
        return self._unacked

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send_forever(), name="publisher-send"),
                       asyncio.create_task(self._sweep_forever(), name="publisher-sweep")]

    def attach(self, nc: NATS) -> None:
        """Publish through `nc` from now on (made after start, when NATS was down at first)."""
        self._nc = nc
        self._js = nc.jetstream(timeout=self._ack_timeout,
                                publish_async_max_pending=self._max_in_flight)
        self.wake()

    def wake(self) -> None:
        """Try sending now (NATS came back)."""
        self._retry_after = 0.0
        self._wake.set()

    def submit(self, record_id: str, payload: bytes,
               trace_headers: dict[str, str] | None = None) -> None:
        if not self._waiting:
            self._first_at = time.monotonic()
            self._wake.set()  # the sender lingers from now
        self._waiting.append(Record(record_id, payload, trace_headers))
        self._unacked += 1
        self._idle.clear()
        if len(self._waiting) >= self._max_records:
            self._full.set()

    async def drain(self, timeout: float) -> int:
        """Send everything now (no lingering from here on) and wait for the acks, at most
        `timeout` seconds; returns how many records are still unacked (they stay with the
        caller for its next start)."""
        self._hurry = True
        self._full.set()
        self.wake()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self.pending

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for batch in self._in_flight.values():
            if batch.future is not None:
                batch.future.cancel()
        self._flush_acks()

    # --- sending ---------------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._lingered()
                await self._send_queued()
            except Exception:  # noqa: BLE001 - the sender must outlive any one failure
                _log.exception("publishing failed; retrying")
                self._retry_after = time.monotonic() + self._retry_seconds

    async def _lingered(self) -> None:
        """Until the oldest waiting record is `linger` old, a batch's worth waits, or a drain."""
        while self._waiting and not self._hurry and len(self._waiting) < self._max_records:
            delay = self._first_at + self._linger - time.monotonic()
            if delay <= 0:
                return
            self._full.clear()
            # asyncio.timeout, not wait_for: no task made for each wait (Python 3.11's wait_for
            # wraps the coroutine in one).
            with suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._full.wait()

    def _can_send(self) -> bool:
        return (self._js is not None and self._nc is not None and self._nc.is_connected
                and time.monotonic() >= self._retry_after)

    def _cut(self) -> None:
        """Everything waiting into batches, encoded once (a re-send reuses the bytes)."""
        waiting, self._waiting = self._waiting, []
        for start in range(0, len(waiting), self._max_records):
            records = waiting[start:start + self._max_records]
            batch_id = secrets.token_hex(16)  # never a record's id: a batch is new each time
            self._queue.append(_Batch(batch_id, records, self._encode(batch_id, records)))

    async def _send_queued(self) -> None:
        if not self._can_send():
            return  # the sweep (or a reconnect) wakes us again; records wait to fill batches
        if self._waiting:
            self._cut()
        assert self._js is not None
        while self._queue and len(self._in_flight) < self._max_in_flight:
            if not self._can_send():
                return
            batch = self._queue.popleft()
            try:
                future = await self._js.publish_async(self._subject, batch.data,
                                                      headers={"Nats-Msg-Id": batch.id})
            except Exception as exc:  # noqa: BLE001 - not sent: keep it first in line
                self._queue.appendleft(batch)
                self._retry_after = time.monotonic() + self._retry_seconds
                _log.warning("publish failed; will retry", subject=self._subject,
                             error=type(exc).__name__)
                return
            batch.future, batch.sent_at = future, time.monotonic()
            self._in_flight[batch.id] = batch
            future.add_done_callback(partial(self._answered, batch))
        if not self._unacked:
            self._idle.set()

    def _answered(self, batch: _Batch, future: asyncio.Future) -> None:
        if future.cancelled() or self._in_flight.get(batch.id) is not batch:
            return  # the sweep gave up on it and queued it again
        del self._in_flight[batch.id]
        if future.exception() is not None:
            RESENT.labels(self._subject).inc()
            self._queue.append(batch)
            self._retry_after = time.monotonic() + self._retry_seconds
            return
        self._batches.inc()
        self._published.inc(len(batch.records))
        self._unacked -= len(batch.records)
        if not self._acked:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acked.extend(record.id for record in batch.records)
        if self._queue or (self._waiting and self._hurry):
            self._wake.set()  # room in flight again
        elif not self._unacked:
            self._idle.set()

    def _flush_acks(self) -> None:
        acked, self._acked = self._acked, []
        if acked:
            self._on_acked(acked)

    async def _sweep_forever(self) -> None:
        """Give up on sends unanswered for `ack_timeout` (NATS went away with them) and wake
        the sender for what waits."""
        while True:
            await asyncio.sleep(min(self._retry_seconds, self._ack_timeout / 2))
            late = time.monotonic() - self._ack_timeout
            stale = [batch for batch in self._in_flight.values() if batch.sent_at < late]
            for batch in stale:
                del self._in_flight[batch.id]
                if batch.future is not None:
                    batch.future.cancel()
                RESENT.labels(self._subject).inc()
            if stale:
                self._queue.extendleft(reversed(stale))
                _log.warning("publishes unacked past the ack timeout; sending again",
                             batches=len(stale), timeout_seconds=self._ack_timeout)
            if self._queue or self._waiting:
                self._wake.set()
