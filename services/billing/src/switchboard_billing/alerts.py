"""Delivering queued budget alerts: the budget.alert event on JetStream (its alert id as the
message id) and a signed webhook POST (header x-switchboard-signature: sha256=<hex HMAC-SHA-256
of the body with the budget's secret>), each retried with exponential backoff until it is
delivered, then removed from the outbox.

Several billing replicas may run this: a delivery is claimed by moving its next attempt forward
in one conditional UPDATE, so only one replica sends it at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from contextlib import suppress
from datetime import datetime, timedelta

import aiohttp
import orjson
import structlog
from google.protobuf import json_format
from nats.aio.client import Client as NATS
from nats.js.api import StorageType, StreamConfig
from prometheus_client import Counter
from sqlalchemy import delete, select, update
from switchboard.events.v1 import events_pb2

from switchboard_common import events

from switchboard_billing.domain import utc_now
from switchboard_billing.settings import BillingSettings
from switchboard_billing.tables import alert_outbox as outbox
from switchboard_billing.tables import budgets
from switchboard_billing.writes import Writer

_log = structlog.get_logger("alerts")
DELIVERIES = Counter("switchboard_billing_alert_deliveries_total", "Budget alert deliveries",
                     ["channel", "result"])  # delivered, retried, dropped
SIGNATURE_HEADER = "x-switchboard-signature"
_CLAIM_SECONDS = 30.0  # a claimed delivery is tried again after this if its sender died


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def alert_json(alert: events_pb2.BudgetAlert) -> bytes:
    return orjson.dumps(json_format.MessageToDict(
        alert, preserving_proto_field_name=True, always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True))


class AlertDispatcher:
    def __init__(self, writer: Writer, settings: BillingSettings) -> None:
        self._w = writer
        self._s = settings
        self._nc: NATS | None = None
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._random = random.Random()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-dispatcher")

    def wake(self) -> None:
        """Deliver now (the consumer just queued some)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.close()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - the dispatcher outlives any one failure
                _log.warning("alert delivery pass failed", error=type(exc).__name__,
                             detail=str(exc)[:200])
            self._wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._s.alert_poll_seconds)

    async def deliver_due(self) -> int:
        """One pass over due deliveries; returns how many were delivered."""
        now = utc_now()
        async with self._w.engine.connect() as conn:
            due = (await conn.execute(
                select(outbox.c.delivery_id, outbox.c.next_attempt_at)
                .where(outbox.c.next_attempt_at <= now).order_by(outbox.c.next_attempt_at)
                .limit(100))).all()
        delivered = 0
        for delivery_id, seen in due:
            row = await self._claim(delivery_id, seen, now)
            if row is not None:
                delivered += await self._attempt(row)
        return delivered

    async def _claim(self, delivery_id: str, seen: datetime, now: datetime):
        async with self._w.begin() as conn:
            return (await conn.execute(
                update(outbox).where(outbox.c.delivery_id == delivery_id,
                                     outbox.c.next_attempt_at == seen)
                .values(next_attempt_at=now + timedelta(seconds=_CLAIM_SECONDS))
                .returning(outbox))).first()

    async def _attempt(self, row) -> int:
        try:
            if row.channel == "nats":
                await self._publish(row.alert_id, row.payload)
            else:
                await self._post(row.budget_id, row.payload)
        except Exception as exc:  # noqa: BLE001 - any failure is retried later
            await self._retry(row, f"{type(exc).__name__}: {str(exc)[:200]}")
            return 0
        async with self._w.begin() as conn:
            await conn.execute(delete(outbox).where(outbox.c.delivery_id == row.delivery_id))
        DELIVERIES.labels(row.channel, "delivered").inc()
        _log.info("budget alert delivered", alert_id=row.alert_id, channel=row.channel,
                  attempts=row.attempts + 1)
        return 1

    async def _retry(self, row, error: str) -> None:
        attempts = row.attempts + 1
        async with self._w.begin() as conn:
            if attempts >= self._s.alert_max_attempts:
                await conn.execute(delete(outbox).where(outbox.c.delivery_id == row.delivery_id))
                DELIVERIES.labels(row.channel, "dropped").inc()
                _log.error("budget alert dropped after its last attempt", alert_id=row.alert_id,
                           channel=row.channel, attempts=attempts, error=error)
                return
            delay = min(self._s.alert_backoff_seconds * 2 ** (attempts - 1),
                        self._s.alert_backoff_max_seconds)
            delay *= 0.5 + self._random.random() / 2  # jitter: replicas do not retry in step
            await conn.execute(update(outbox).where(outbox.c.delivery_id == row.delivery_id)
                               .values(attempts=attempts, last_error=error,
                                       next_attempt_at=utc_now() + timedelta(seconds=delay)))
        DELIVERIES.labels(row.channel, "retried").inc()
        _log.warning("budget alert delivery failed; retrying", alert_id=row.alert_id,
                     channel=row.channel, attempts=attempts, delay_seconds=round(delay, 2),
                     error=error)

    async def _publish(self, alert_id: str, payload: bytes) -> None:
        if self._nc is None:
            self._nc = await asyncio.wait_for(
                events.connect(self._s.nats_url, name="switchboard-billing-alerts"), 5)
            await events.ensure_stream(self._nc.jetstream(), StreamConfig(
                name=self._s.alerts_stream, subjects=[self._s.alert_subject],
                storage=StorageType.FILE, max_age=30 * 24 * 3600.0,
                duplicate_window=events.DUPLICATE_WINDOW_SECONDS))
        await self._nc.jetstream().publish(self._s.alert_subject, payload,
                                           headers={"Nats-Msg-Id": alert_id}, timeout=5)

    async def _post(self, budget_id: str, payload: bytes) -> None:
        async with self._w.engine.connect() as conn:
            hook = (await conn.execute(select(budgets.c.webhook_url, budgets.c.webhook_secret)
                                       .where(budgets.c.budget_id == budget_id))).first()
        if hook is None or not hook.webhook_url:
            return  # the budget or its webhook was removed since: nothing to send
        body = alert_json(events_pb2.BudgetAlert.FromString(payload))
        headers = {"content-type": "application/json",
                   "x-switchboard-alert-id": events_pb2.BudgetAlert.FromString(payload).alert_id}
        if hook.webhook_secret:
            headers[SIGNATURE_HEADER] = signature(hook.webhook_secret, body)
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._s.alert_webhook_timeout_seconds))
        async with self._http.post(hook.webhook_url, data=body, headers=headers) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"webhook answered {resp.status}")
