"""The lease that makes an OAuth refresh single-flight across router replicas: a key per
credential in a NATS JetStream key-value bucket, taken with a revision compare-and-set.

Why NATS KV and not a row lock in auth's database: every replica already holds a NATS connection
(usage events, keys.changed), `create` is an atomic compare-and-set on revision 0 that exactly one
replica wins, and the bucket's TTL ends the lease of a replica that died mid-refresh, with no
schema, RPC or polling of auth added; a database lease would need a new RPC, a migration and a
round trip to auth per attempt for the same guarantee. The holder stores the new tokens (in auth)
before it lets go, and whoever takes the lease next reads them before deciding to refresh, so two
replicas make one refresh. While NATS is away the refresh goes on under the replica's own lock
alone (logged): a refresh late is worse than two, and a second replica that loses the race with a
rotated refresh token reads the stored set again before it reports a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog

from switchboard_router.oauth import TokenRefreshFailed

_log = structlog.get_logger("oauth")
BUCKET = "switchboard_oauth_refresh"
TTL_SECONDS = 30.0  # a lease whose holder died ends after this (a refresh takes well under it)
# How long a replica waits for another's refresh before it gives up: past the TTL, so a lease
# whose holder died expires while the others still wait, and one of them then refreshes.
WAIT_SECONDS = TTL_SECONDS + 5.0
POLL_SECONDS = 0.05


class RefreshLease:
    def __init__(self, nats: Callable[[], Any], owner: str, *, ttl_seconds: float = TTL_SECONDS,
                 wait_seconds: float = WAIT_SECONDS, poll_seconds: float = POLL_SECONDS) -> None:
        self._nats = nats  # the connected NATS client, or None while NATS is away
        self._owner = owner.encode()
        self._ttl, self._wait, self._poll = ttl_seconds, wait_seconds, poll_seconds
        self._kv: Any = None

    @asynccontextmanager
    async def hold(self, credential_id: str) -> AsyncIterator[None]:
        kv = await self._bucket()
        revision = await self._acquire(kv, credential_id) if kv is not None else None
        try:
            yield
        finally:
            if revision is not None:
                await self._release(kv, credential_id, revision)

    async def _bucket(self) -> Any:
        from nats.js.api import KeyValueConfig
        from nats.js.errors import BucketNotFoundError

        nc = self._nats()
        if nc is None or not nc.is_connected:
            _log.warning("NATS away: an OAuth refresh is single-flight on this replica only")
            return None
        if self._kv is not None:
            return self._kv
        js = nc.jetstream()
        try:
            try:
                self._kv = await js.key_value(BUCKET)
            except BucketNotFoundError:
                # Replicas racing here create the same bucket: JetStream takes an identical config.
                self._kv = await js.create_key_value(KeyValueConfig(
                    bucket=BUCKET, history=1, ttl=self._ttl,
                    description="OAuth refresh leases of the routers, one key per credential"))
        except Exception as exc:  # noqa: BLE001 - no lease is better than no refresh
            _log.warning("no OAuth refresh lease bucket; single-flight on this replica only",
                         error=type(exc).__name__)
            return None
        return self._kv

    async def _acquire(self, kv: Any, credential_id: str) -> int | None:
        from nats.errors import Error as NatsError
        from nats.js.errors import KeyWrongLastSequenceError

        deadline = time.monotonic() + self._wait
        while True:
            try:
                return int(await kv.create(credential_id, self._owner))
            except KeyWrongLastSequenceError:
                pass  # another replica refreshes it now
            except (TimeoutError, NatsError) as exc:
                _log.warning("OAuth refresh lease unavailable; single-flight on this replica only",
                             credential_id=credential_id, error=type(exc).__name__)
                return None
            if time.monotonic() > deadline:
                raise TokenRefreshFailed(
                    f"Another gateway replica has been refreshing the OAuth token of credential "
                    f"{credential_id} for {self._wait:.0f} s without finishing.")
            await asyncio.sleep(self._poll)

    @staticmethod
    async def _release(kv: Any, credential_id: str, revision: int) -> None:
        try:
            await kv.delete(credential_id, last=revision)
        except Exception as exc:  # noqa: BLE001 - the TTL ends it anyway
            _log.warning("OAuth refresh lease not released; it ends with its TTL",
                         credential_id=credential_id, error=type(exc).__name__)
