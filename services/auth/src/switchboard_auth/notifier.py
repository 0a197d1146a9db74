"""Announces key changes on core NATS (`keys.changed`) so routers drop their cached verdicts.

Best effort by design: routers also expire cached verdicts after cache_ttl_seconds (the verdict
age bound), so a change published while NATS is down takes effect within that bound. Core NATS,
not JetStream: a router that was away has no cache to fix.
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
FLUSH_SECONDS = 1

_CHANGE = {
    KeyChange.CREATED: events_pb2.KEY_CHANGE_CREATED,
    KeyChange.UPDATED: events_pb2.KEY_CHANGE_UPDATED,
    KeyChange.REVOKED: events_pb2.KEY_CHANGE_REVOKED,
    KeyChange.DELETED: events_pb2.KEY_CHANGE_DELETED,
    KeyChange.ROTATED: events_pb2.KEY_CHANGE_ROTATED,
    KeyChange.TENANT_UPDATED: events_pb2.KEY_CHANGE_TENANT_UPDATED,
    KeyChange.TENANT_DELETED: events_pb2.KEY_CHANGE_TENANT_DELETED,
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
        await self.publish(key.key_id, key.tenant_id, change)

    async def tenant_changed(self, tenant_id: str, change: KeyChange) -> None:
        """Every key of the tenant changed (its default limits, or it is gone): key_id ""."""
        await self.publish("", tenant_id, change)

    async def publish(self, key_id: str, tenant_id: str, change: KeyChange) -> None:
        occurred_at = Timestamp()
        occurred_at.FromDatetime(utc_now())
        event = events_pb2.KeysChanged(key_id=key_id, tenant_id=tenant_id,
                                       change=_CHANGE[change], occurred_at=occurred_at)
        if self._nc is None or not self.connected:
            _log.warning("keys.changed not sent: NATS is not connected; routers expire the "
                         "verdict by its age bound", key_id=key_id, tenant_id=tenant_id,
                         change=change.value)
            return
        try:
            await self._nc.publish(self._subject, event.SerializeToString())
            # The admin's answer waits until NATS has the event (the server routes a PUB to its
            # subscribers before it answers the flush's PING), so the client's very next request
            # finds the verdict dropped on every router.
            await self._nc.flush(timeout=FLUSH_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the change is committed; the TTL covers a miss
            _log.warning("keys.changed not sent", key_id=key_id, change=change.value,
                         error=type(exc).__name__)

    async def credentials_changed(self, credential_id: str, provider: str) -> None:
        """A stored provider credential changed: every router reloads them (best effort; a
        router reloads them on reconnecting too)."""
        occurred_at = Timestamp()
        occurred_at.FromDatetime(utc_now())
        event = events_pb2.CredentialsChanged(credential_id=credential_id, provider=provider,
                                              occurred_at=occurred_at)
        if self._nc is None or not self.connected:
            _log.warning("credentials.changed not sent: NATS is not connected",
                         credential_id=credential_id)
            return
        try:
            await self._nc.publish(events.CREDENTIALS_CHANGED, event.SerializeToString())
            await self._nc.flush(timeout=FLUSH_SECONDS)
        except Exception as exc:  # noqa: BLE001 - committed; routers reload on reconnect
            _log.warning("credentials.changed not sent", credential_id=credential_id,
                         error=type(exc).__name__)

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()  # flushes what was published before closing
            except Exception:  # noqa: BLE001 - shutting down either way
                await self._nc.close()
