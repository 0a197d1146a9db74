"""The router's NATS link: made in the background so the router starts (and serves) without NATS;
then usage events flow to JetStream and keys.changed drops cached verdicts and leased quota. Until then (and
whenever NATS is away) usage events wait in the journal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from nats.aio.client import Client as NATS
from switchboard.events.v1 import events_pb2
from switchboard_common import events
from switchboard_common.publisher import BatchPublisher

_log = structlog.get_logger("nats")


class NatsLink:
    def __init__(self, url: str, publisher: BatchPublisher, *,
                 on_key_changed: Callable[[str, str], None], on_reconnect: Callable[[], None],
                 ensure_stream: bool, name: str = "switchboard-router",
                 on_credentials_changed: Callable[[], None] | None = None) -> None:
        self._url = url
        self._name = name
        self._publisher = publisher
        self._on_key_changed = on_key_changed
        self._on_reconnect = on_reconnect
        self._on_credentials_changed = on_credentials_changed
        self._ensure_stream = ensure_stream
        self._nc: NATS | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def client(self) -> NATS | None:
        """The connection while it is up (the OAuth refresh lease uses its key-value store)."""
        return self._nc if self.connected else None

    async def start(self, wait_seconds: float) -> None:
        """Connect, waiting at most `wait_seconds`; past that, keep trying in the background
        while usage events wait in the journal."""
        self._task = asyncio.create_task(self._connect())
        done, _ = await asyncio.wait({self._task}, timeout=wait_seconds)
        if not done:
            _log.warning("NATS unreachable; starting anyway, usage events wait in the journal",
                         url=self._url)

    async def _connect(self) -> None:
        nc = await events.connect(self._url, self._name, on_reconnect=self._reconnected)
        self._nc = nc
        await nc.subscribe(events.KEYS_CHANGED, cb=self._key_changed)
        if self._on_credentials_changed is not None:
            await nc.subscribe(events.CREDENTIALS_CHANGED, cb=self._credentials_changed)
        if self._ensure_stream:
            try:  # created when absent; deployment's own settings are kept (and compared)
                await events.ensure_stream(nc.jetstream(), events.usage_stream_config())
            except Exception:  # noqa: BLE001 - publishes are retried from the journal meanwhile
                _log.exception("could not check the usage stream")
        self._publisher.attach(nc)
        # keys.changed events sent while we were not listening are lost: forget every verdict.
        self._on_reconnect()
        if self._on_credentials_changed is not None:
            self._on_credentials_changed()  # and reload the stored credentials
        _log.info("NATS connected", url=self._url)

    async def _key_changed(self, msg) -> None:
        try:
            event = events_pb2.KeysChanged.FromString(msg.data)
        except Exception:  # noqa: BLE001 - a bad payload must not stop the subscription
            _log.warning("ignored a malformed keys.changed event")
            return
        # One key, or (key_id "") every key of the tenant: its defaults changed, or it is gone.
        if event.key_id or event.tenant_id:
            self._on_key_changed(event.key_id, event.tenant_id)

    async def _credentials_changed(self, msg) -> None:
        # The payload names the credential; the reload takes them all (a handful of rows).
        assert self._on_credentials_changed is not None
        self._on_credentials_changed()

    async def _reconnected(self) -> None:
        # keys.changed events sent while we were away are lost: forget every verdict.
        self._on_reconnect()
        if self._on_credentials_changed is not None:
            self._on_credentials_changed()
        self._publisher.wake()

    async def close(self) -> None:
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._nc is not None:
            try:
                await asyncio.wait_for(self._nc.drain(), timeout=2)
            except Exception:  # noqa: BLE001
                await self._nc.close()
