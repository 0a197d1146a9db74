"""Budget alerts into the outbox: a threshold crossed is marked once per budget, period, unit and
threshold (the mark's primary key decides, whichever billing replica settles first), and its
deliveries (the budget.alert event, and the webhook where one is set) are queued in the same
transaction as the spend that crossed it; `alerts.AlertDispatcher` sends them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Connection
from switchboard.events.v1 import events_pb2

from switchboard_billing.periods import period_end
from switchboard_billing.tables import alert_marks, alert_outbox
from switchboard_billing.writes import Writer

if TYPE_CHECKING:
    from switchboard_billing.settlement import Crossing


def crossed(c: Crossing) -> list[int]:
    """The thresholds (percent of the limit) this move of spend reached for the first time."""
    limit = c.rule.limit_micros_usd if c.unit == "usd" else c.rule.limit_tokens
    if not limit or limit <= 0:
        return []
    return [t for t in c.rule.alert_thresholds
            if c.before * 100 < limit * t <= c.after * 100]


def alert_id(c: Crossing, threshold: int) -> str:
    return f"{c.rule.budget_id}:{c.period_start.date().isoformat()}:{c.unit}:{threshold}"


def build(c: Crossing, threshold: int, now: datetime) -> events_pb2.BudgetAlert:
    alert = events_pb2.BudgetAlert(
        key_id=c.rule.scope_id if c.rule.scope == "key" else "",
        tenant_id=c.rule.scope_id if c.rule.scope == "tenant" else "",
        threshold_percent=threshold, limit_micros_usd=c.rule.limit_micros_usd or 0,
        spent_micros_usd=c.spent_micros_usd, alert_id=alert_id(c, threshold),
        period=c.rule.period, unit=c.unit, limit_tokens=c.rule.limit_tokens or 0,
        spent_tokens=c.spent_tokens)
    alert.occurred_at.CopyFrom(_ts(now))
    alert.period_started_at.CopyFrom(_ts(c.period_start))
    resets = period_end(c.rule.period, c.period_start)
    if resets is not None:
        alert.resets_at.CopyFrom(_ts(resets))
    return alert


def queue(w: Writer, conn: Connection, crossings: Sequence[Crossing], now: datetime) -> int:
    queued = 0
    for c in crossings:
        for threshold in crossed(c):
            alert = build(c, threshold, now)
            fresh = (conn.execute(
                w.insert(alert_marks).values(alert_id=alert.alert_id, created_at=now)
                .on_conflict_do_nothing().returning(alert_marks.c.alert_id))).first()
            if fresh is None:
                continue  # sent (or queued) before: once per threshold per period
            channels = ["nats", "webhook"] if c.rule.webhook_url else ["nats"]
            conn.execute(alert_outbox.insert(), [
                {"delivery_id": f"{alert.alert_id}:{channel}", "alert_id": alert.alert_id,
                 "channel": channel, "payload": alert.SerializeToString(),
                 "budget_id": c.rule.budget_id, "attempts": 0, "next_attempt_at": now,
                 "last_error": ""} for channel in channels])
            queued += 1
    return queued


def _ts(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts
