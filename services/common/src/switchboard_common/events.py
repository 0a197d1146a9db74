"""NATS and JetStream: connecting, checking the usage stream, and publishing without waiting.

Subjects and streams are named here once; payloads are the messages in proto/switchboard/events/v1.
The stream's configuration belongs to deployment (`switchboard_common.usage_stream` creates or
updates it); a service only creates it when absent and otherwise says what differs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge

USAGE_STREAM = "USAGE"
USAGE_RECORDED = "usage.recorded"
KEYS_CHANGED = "keys.changed"
# Stored provider credentials were added, rotated or removed: routers reload them (core NATS).
CREDENTIALS_CHANGED = "credentials.changed"
BUDGET_ALERT = "budget.alert"

_log = structlog.get_logger("events")
PUBLISHED = Counter("switchboard_events_published_total", "Events acked by JetStream", ["subject"])
RESENT = Counter("switchboard_events_resent_total",
                 "Publishes sent again: failed, unanswered within the ack timeout, or NATS away",
                 ["subject"])
PENDING = Gauge("switchboard_events_pending", "Events not yet acked by JetStream (queued or sent)")
DUPLICATE_WINDOW_SECONDS = 600.0  # re-sends within it are dropped by JetStream itself
USAGE_MAX_AGE_SECONDS = 7 * 24 * 3600.0
ERROR_LOG_INTERVAL_SECONDS = 30.0  # a NATS error of one kind is logged at most this often


class ConnectionLog:
    """nats-py's connection callbacks as short log lines.

    Without them nats-py logs a full traceback on every reconnect attempt (twice a second while
    NATS is down). Here each kind of error is one warning per interval, counting the repeats it
    held back, and a reconnect starts the count afresh so the next outage is reported at once.
    """

    def __init__(self, name: str, interval: float = ERROR_LOG_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic, logger=None) -> None:
        self._name = name
        self._log = logger or _log
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}  # error type -> when it was last logged
        self._held_back: dict[str, int] = {}

    async def error(self, exc: Exception) -> None:
        kind = type(exc).__name__
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._held_back[kind] = self._held_back.get(kind, 0) + 1
            return
        self._last[kind] = now
        self._log.warning("nats error", client=self._name, error=kind, detail=str(exc)[:200],
                     repeats=self._held_back.pop(kind, 0))

    async def disconnected(self) -> None:
        self._log.info("nats disconnected", client=self._name)

    async def reconnected(self) -> None:
        self._last.clear()
        self._held_back.clear()
        self._log.info("nats reconnected", client=self._name)


async def connect(url: str, name: str, *,
                  on_reconnect: Callable[[], Awaitable[None]] | None = None, **options) -> NATS:
    """Connect, retrying forever in the client (reconnects keep the same object).

    Errors, disconnects and reconnects are logged briefly (`ConnectionLog`); `options` go to
    `nats.connect` as they are and win over those defaults (e.g. a caller's own `error_cb`);
    `on_reconnect` runs after each reconnect, beside the log line.
    With no server up this call waits until one is: callers that must start without NATS run it
    in a task.
    """
    log = ConnectionLog(name)

    async def reconnected() -> None:
        await log.reconnected()
        if on_reconnect is not None:
            await on_reconnect()

    callbacks = {"error_cb": log.error, "disconnected_cb": log.disconnected,
                 "reconnected_cb": reconnected}
    return await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                              connect_timeout=2, **{**callbacks, **options})



def usage_stream_config(name: str = USAGE_STREAM, subjects: list[str] | None = None, *,
                        replicas: int = 1, max_age: float = USAGE_MAX_AGE_SECONDS) -> StreamConfig:
    """The usage stream: on disk, limits retention bounded by age (billing replays within it),
    and a 10-minute window that drops re-sent message ids. One replica suits `make run`; a
    cluster's stream is made by billing's init container with three
    (deploy/k8s/base/billing/billing.yaml)."""
    return StreamConfig(name=name, subjects=subjects or ["usage.>"], storage=StorageType.FILE,
                        retention=RetentionPolicy.LIMITS, max_age=max_age, num_replicas=replicas,
                        duplicate_window=DUPLICATE_WINDOW_SECONDS)


# What `ensure_stream` compares: the settings a service relies on.
_COMPARED = ("subjects", "storage", "retention", "max_age", "num_replicas", "duplicate_window")


async def ensure_stream(js: JetStreamContext, wanted: StreamConfig) -> list[str]:
    """Create the stream when it does not exist; else leave it as deployment made it and log
    (and return) what differs from `wanted`."""
    assert wanted.name, "a stream configuration names its stream"
    try:
        info = await js.stream_info(wanted.name)
    except NotFoundError:
        await js.add_stream(wanted)
        _log.info("stream created", stream=wanted.name, replicas=wanted.num_replicas,
                  max_age_seconds=wanted.max_age)
        return []
    differences = stream_differences(info.config, wanted)
    if differences:
        _log.warning("stream configuration differs from this service's default; kept as it is",
                     stream=wanted.name, differences=differences)
    return differences


def stream_differences(actual: StreamConfig, wanted: StreamConfig) -> list[str]:
    out = []
    for name in _COMPARED:
        have, want = getattr(actual, name), getattr(wanted, name)
        if name == "num_replicas":
            have, want = have or 1, want or 1
        if name == "subjects":
            have, want = sorted(have or []), sorted(want or [])
        if have != want:
            out.append(f"{name}: {_shown(have)} (wanted {_shown(want)})")
    return out


def _shown(value) -> str:
    return str(getattr(value, "value", value))


@dataclass(slots=True)
class _Outgoing:
    subject: str
    msg_id: str
    payload: bytes
    sent_at: float = 0.0
    future: asyncio.Future | None = None
    trace_headers: dict[str, str] | None = None  # W3C traceparent (tracing.py), when traced


class EventPublisher:
    """Publishes to JetStream without waiting for each ack.

    `submit` queues an event and returns; a sender task pipelines the queue with `publish_async`
    (one socket write for many events), acks are collected as they arrive and handed to
    `on_acked` in batches (one call per loop turn). An event that fails, or is not acked within
    `ack_timeout`, or waits while NATS is away, is sent again; its message id makes JetStream drop
    a copy that had landed. Durability is the caller's: what `on_acked` has not named yet must be
    kept (the router's journal), since a queue in memory dies with the process.
    """

    def __init__(self, *, on_acked: Callable[[list[str]], None], ack_timeout: float = 5.0,
                 max_in_flight: int = 1024, retry_seconds: float = 1.0) -> None:
        self._on_acked = on_acked
        self._ack_timeout = ack_timeout
        self._max_in_flight = max_in_flight
        self._retry_seconds = retry_seconds
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._queue: deque[_Outgoing] = deque()
        self._in_flight: dict[str, _Outgoing] = {}
        self._acked: list[str] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_after = 0.0
        self._tasks: list[asyncio.Task] = []
        self._counters: dict[str, Any] = {}  # PUBLISHED's child per subject: labels() per ack costs
        PENDING.set_function(lambda: self.pending)

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._in_flight)

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

    def submit(self, subject: str, msg_id: str, payload: bytes,
               trace_headers: dict[str, str] | None = None) -> None:
        self._queue.append(_Outgoing(subject, msg_id, payload, trace_headers=trace_headers))
        self._idle.clear()
        self._wake.set()

    async def drain(self, timeout: float) -> int:
        """Send everything queued and wait for the acks, at most `timeout` seconds; returns how
        many events are still unacked (they stay with the caller for its next start)."""
        self.wake()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            pass
        return self.pending

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for item in self._in_flight.values():
            if item.future is not None:
                item.future.cancel()
        self._flush_acks()

    # --- sending ---------------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._send_queued()
            except Exception:  # noqa: BLE001 - the sender must outlive any one failure
                _log.exception("publishing failed; retrying")
                self._retry_after = time.monotonic() + self._retry_seconds

    async def _send_queued(self) -> None:
        while self._queue and len(self._in_flight) < self._max_in_flight:
            if (self._js is None or self._nc is None or not self._nc.is_connected
                    or time.monotonic() < self._retry_after):
                return  # the sweep (or a reconnect) wakes us again
            item = self._queue.popleft()
            if item.msg_id in self._in_flight:
                continue  # already sent again by the sweep
            try:
                headers = {"Nats-Msg-Id": item.msg_id}
                if item.trace_headers:
                    headers.update(item.trace_headers)
                future = await self._js.publish_async(item.subject, item.payload, headers=headers)
            except Exception as exc:  # noqa: BLE001 - not sent: keep it first in line
                self._queue.appendleft(item)
                self._retry_after = time.monotonic() + self._retry_seconds
                _log.warning("publish failed; will retry", subject=item.subject,
                             error=type(exc).__name__)
                return
            item.future, item.sent_at = future, time.monotonic()
            self._in_flight[item.msg_id] = item
            future.add_done_callback(partial(self._answered, item))
        if not self._queue and not self._in_flight:
            self._idle.set()

    def _answered(self, item: _Outgoing, future: asyncio.Future) -> None:
        if future.cancelled() or self._in_flight.get(item.msg_id) is not item:
            return  # the sweep gave up on it and queued it again
        del self._in_flight[item.msg_id]
        if future.exception() is not None:
            RESENT.labels(item.subject).inc()
            self._queue.append(item)
            self._retry_after = time.monotonic() + self._retry_seconds
            return
        self._published(item.subject).inc()
        if not self._acked:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acked.append(item.msg_id)
        if self._queue:
            self._wake.set()  # room in flight again
        elif not self._in_flight:
            self._idle.set()

    def _published(self, subject: str) -> Any:
        counter = self._counters.get(subject)
        if counter is None:
            counter = self._counters[subject] = PUBLISHED.labels(subject)
        return counter

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
            stale = [item for item in self._in_flight.values() if item.sent_at < late]
            for item in stale:
                del self._in_flight[item.msg_id]
                if item.future is not None:
                    item.future.cancel()
                RESENT.labels(item.subject).inc()
            if stale:
                self._queue.extendleft(reversed(stale))
                _log.warning("publishes unacked past the ack timeout; sending again",
                             count=len(stale), timeout_seconds=self._ack_timeout)
            if self._queue:
                self._wake.set()
