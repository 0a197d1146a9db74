"""NATS and JetStream: connecting and checking the usage stream (publishing: publisher.py).

Subjects and streams are named here once; payloads are the messages in proto/switchboard/events/v1.
The stream's configuration belongs to deployment (`switchboard_common.usage_stream` creates or
updates it); a service only creates it when absent and otherwise says what differs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

USAGE_STREAM = "USAGE"
USAGE_RECORDED = "usage.recorded"
USAGE_BATCH = "usage.recorded.batch"  # events.v1.UsageBatch: many usage.recorded in one message
KEYS_CHANGED = "keys.changed"
# Stored provider credentials were added, rotated or removed: routers reload them (core NATS).
CREDENTIALS_CHANGED = "credentials.changed"
BUDGET_ALERT = "budget.alert"

_log = structlog.get_logger("events")
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



def batch_subject(usage_subject: str) -> str:
    """Where the batches of `usage_subject`'s events go (a test's own subject has its own)."""
    return f"{usage_subject}.batch"


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
