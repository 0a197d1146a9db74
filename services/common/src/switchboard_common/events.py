"""NATS and JetStream: connecting, the streams we own, and publishing that never loses an event.

Subjects and streams are named here once; payloads are the messages in proto/switchboard/events/v1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import structlog
from google.protobuf.message import Message
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError
from prometheus_client import Counter, Gauge

from switchboard_common.outbox import Outbox

USAGE_STREAM = "USAGE"
USAGE_RECORDED = "usage.recorded"
KEYS_CHANGED = "keys.changed"
BUDGET_ALERT = "budget.alert"

_log = structlog.get_logger("events")
PUBLISHED = Counter("switchboard_events_published_total", "Events acked by JetStream", ["subject"])
DEFERRED = Counter("switchboard_events_deferred_total", "Events written to the outbox", ["subject"])
OUTBOX_SIZE = Gauge("switchboard_outbox_events", "Events waiting in the local outbox")
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


async def ensure_usage_stream(js: JetStreamContext) -> None:
    """The USAGE stream holds `usage.*` on disk; its 10-minute window drops re-sent message ids."""
    config = StreamConfig(name=USAGE_STREAM, subjects=["usage.>"], duplicate_window=600.0)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


class EventPublisher:
    """Publishes protobuf events to JetStream, awaiting the ack; what fails goes to the outbox.

    A background task re-sends the outbox while NATS is reachable. The JetStream message id makes
    a re-send of an event that did land a no-op within the stream's duplicate window.
    """

    def __init__(self, nc: NATS | None, outbox_path: Path, *, ack_timeout: float = 2.0,
                 retry_interval: float = 1.0) -> None:
        self._nc = nc
        self._ack_timeout = ack_timeout
        self._js = nc.jetstream(timeout=ack_timeout) if nc else None
        self._outbox = Outbox(outbox_path)
        self._retry_interval = retry_interval
        self._flusher: asyncio.Task | None = None

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever())

    def attach(self, nc: NATS) -> None:
        """Publish through `nc` from now on: a connection made after start, when NATS was down."""
        self._nc = nc
        self._js = nc.jetstream(timeout=self._ack_timeout)

    async def publish(self, subject: str, event: Message, msg_id: str) -> bool:
        """True when JetStream acked it; False when it was kept in the outbox for later."""
        payload = event.SerializeToString()
        if await self._send(subject, payload, msg_id):
            return True
        await self._outbox.put(subject, msg_id, payload)
        DEFERRED.labels(subject).inc()
        OUTBOX_SIZE.inc()
        return False

    async def _send(self, subject: str, payload: bytes, msg_id: str) -> bool:
        if self._js is None or not self._nc.is_connected:
            return False
        try:
            await self._js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        except Exception as exc:  # noqa: BLE001 - any failure means "not acked": keep it
            _log.warning("publish failed; event kept in the outbox", subject=subject,
                         msg_id=msg_id, error=type(exc).__name__)
            return False
        PUBLISHED.labels(subject).inc()
        return True

    async def flush_outbox(self) -> int:
        """Re-send what the outbox holds, oldest first; returns how many were acked."""
        sent = 0
        for row_id, subject, msg_id, payload in await self._outbox.batch():
            if not await self._send(subject, payload, msg_id):
                break
            await self._outbox.remove(row_id)
            OUTBOX_SIZE.dec()
            sent += 1
        return sent

    async def pending(self) -> int:
        return await self._outbox.size()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            try:
                if await self.flush_outbox():
                    _log.info("outbox flushed", remaining=await self._outbox.size())
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure
                _log.exception("outbox flush failed")

    async def close(self) -> None:
        if self._flusher:
            self._flusher.cancel()
        await self.flush_outbox()
        self._outbox.close()
