"""Announces key changes on core NATS (`keys.changed`) so routers drop their cached verdicts.

Best effort by design: routers also expire cached verdicts after cache_ttl_seconds, so a change
published while NATS is down takes effect within that TTL. Core NATS, not JetStream: a router that
was away has no cache to fix.
"""

from __future__ import annotations

import asyncio

import structlog
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS
from switchboard.events.v1 import events_pb2

from switchboard_common import events

from switchboard_auth.domain import Key, KeyChange, utc_now

_log = structlog.get_logger("notifier")

_CHANGE = {
    KeyChange.CREATED: events_pb2.KEY_CHANGE_CREATED,
    KeyChange.UPDATED: events_pb2.KEY_CHANGE_UPDATED,
    KeyChange.REVOKED: events_pb2.KEY_CHANGE_REVOKED,
}


class KeysChangedNotifier:
    def __init__(self, nats_url: str, subject: str = events.KEYS_CHANGED) -> None:
        self._url = nats_url
        self._subject = subject
        self._nc: NATS | None = None
        self._connecting: asyncio.Task | None = None

    def start(self) -> None:
        """Connect in the background, so auth serves even while NATS is unreachable."""
        self._connecting = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        # events.connect retries inside the client until the server answers; this loop covers
        # whatever else it may raise (a bad URL scheme, a TLS demand).
        while self._nc is None:
            try:
                self._nc = await events.connect(self._url, name="switchboard-auth")
            except Exception as exc:  # noqa: BLE001 - keep trying; auth serves meanwhile
                _log.warning("nats connect failed; retrying", error=type(exc).__name__)
                await asyncio.sleep(2.0)
        _log.info("nats connected", subject=self._subject)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def __call__(self, key: Key, change: KeyChange) -> None:
        occurred_at = Timestamp()
        occurred_at.FromDatetime(utc_now())
        event = events_pb2.KeysChanged(key_id=key.key_id, tenant_id=key.tenant_id,
                                       change=_CHANGE[change], occurred_at=occurred_at)
        if not self.connected:
            _log.warning("keys.changed not sent: NATS is not connected; routers expire the "
                         "verdict by its TTL", key_id=key.key_id, change=change.value)
            return
        try:
            await self._nc.publish(self._subject, event.SerializeToString())
        except Exception as exc:  # noqa: BLE001 - the change is committed; the TTL covers a miss
            _log.warning("keys.changed not sent", key_id=key.key_id, change=change.value,
                         error=type(exc).__name__)

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()  # flushes what was published before closing
            except Exception:  # noqa: BLE001 - shutting down either way
                await self._nc.close()
