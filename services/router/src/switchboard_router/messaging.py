"""The router's NATS link: made in the background so the router starts (and serves) without NATS;
then usage events flow to JetStream and keys.changed drops cached verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from nats.aio.client import Client as NATS
from switchboard.events.v1 import events_pb2
from switchboard_common import events

_log = structlog.get_logger("nats")


class NatsLink:
    def __init__(self, url: str, publisher: events.EventPublisher, *,
                 on_key_changed: Callable[[str], None], on_reconnect: Callable[[], None],
                 ensure_stream: bool, name: str = "switchboard-router") -> None:
        self._url = url
        self._name = name
        self._publisher = publisher
        self._on_key_changed = on_key_changed
        self._on_reconnect = on_reconnect
        self._ensure_stream = ensure_stream
        self._nc: NATS | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self, wait_seconds: float) -> None:
        """Connect, waiting at most `wait_seconds`; past that, keep trying in the background
        while usage events wait in the outbox."""
        self._task = asyncio.create_task(self._connect())
        done, _ = await asyncio.wait({self._task}, timeout=wait_seconds)
        if not done:
            _log.warning("NATS unreachable; starting anyway, usage events wait in the outbox",
                         url=self._url)

    async def _connect(self) -> None:
        nc = await events.connect(self._url, self._name, on_reconnect=self._reconnected)
        self._nc = nc
        await nc.subscribe(events.KEYS_CHANGED, cb=self._key_changed)
        if self._ensure_stream:
            try:
                await events.ensure_usage_stream(nc.jetstream())
            except Exception:  # noqa: BLE001 - publishing will fail into the outbox and say so
                _log.exception("could not create the usage stream")
        self._publisher.attach(nc)
        # keys.changed events sent while we were not listening are lost: forget every verdict.
        self._on_reconnect()
        _log.info("NATS connected", url=self._url)

    async def _key_changed(self, msg) -> None:
        try:
            event = events_pb2.KeysChanged.FromString(msg.data)
        except Exception:  # noqa: BLE001 - a bad payload must not stop the subscription
            _log.warning("ignored a malformed keys.changed event")
            return
        if event.key_id:
            self._on_key_changed(event.key_id)

    async def _reconnected(self) -> None:
        # keys.changed events sent while we were away are lost: forget every verdict.
        self._on_reconnect()

    async def close(self) -> None:
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._nc is not None:
            try:
                await asyncio.wait_for(self._nc.drain(), timeout=2)
            except Exception:  # noqa: BLE001
                await self._nc.close()
