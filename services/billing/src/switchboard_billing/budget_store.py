"""Budgets in billing's database: replacing a key's or tenant's budget (with this period's spend
counted from the ledger), reading where each stands, and the budgets that apply to usage."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_billing.domain import BudgetRule, BudgetSpec, Standing
from switchboard_billing.periods import period_end, period_start
from switchboard_billing.tables import budget_counters as counters
from switchboard_billing.tables import budgets, lease_allocations
from switchboard_billing.tables import usage_records as usage
from switchboard_billing.writes import Writer

_SCOPE_COLUMN = {"key": usage.c.key_id, "tenant": usage.c.tenant_id}


class BudgetStore:
    def __init__(self, writer: Writer) -> None:
        self._w = writer

    async def replace(self, spec: BudgetSpec, now: datetime) -> None:
        """The scope's budget becomes `spec`: rules not in it go, new ones start with what the
        ledger already holds for their current period."""
        async with self._w.begin() as conn:
            if self._w.dialect == "postgresql":
                # Usage stored while the spend is summed would be in neither the sum nor (its
                # transaction not seeing this budget) the counter: hold inserts until commit.
                await conn.execute(text("LOCK TABLE usage_records IN SHARE MODE"))
            existing = {r.period: r
                        for r in await conn.run_sync(rules_for, [(spec.scope, spec.scope_id)])}
            gone = [r.budget_id for p, r in existing.items() if p not in spec.limits]
            if gone:
                for table in (lease_allocations, counters, budgets):
                    await conn.execute(delete(table).where(table.c.budget_id.in_(gone)))
            for period, (usd, tokens) in sorted(spec.limits.items()):
                values = {"limit_micros_usd": usd, "limit_tokens": tokens,
                          "alert_thresholds": ",".join(map(str, spec.alert_thresholds)),
                          "webhook_url": spec.webhook_url, "webhook_secret": spec.webhook_secret,
                          "updated_at": now}
                rule = existing.get(period)
                if rule is not None:
                    await conn.execute(budgets.update()
                                       .where(budgets.c.budget_id == rule.budget_id).values(values))
                    continue
                budget_id = uuid.uuid4().hex
                await conn.execute(budgets.insert().values(
                    budget_id=budget_id, scope=spec.scope, scope_id=spec.scope_id, period=period,
                    created_at=now, **values))
                await self._count_the_period_so_far(conn, spec, budget_id, period, now)

    async def _count_the_period_so_far(self, conn: AsyncConnection, spec: BudgetSpec,
                                       budget_id: str, period: str, now: datetime) -> None:
        start = period_start(period, now)
        spent = (await conn.execute(
            select(func.coalesce(func.sum(usage.c.cost_micros_usd), 0),
                   func.coalesce(func.sum(usage.c.total_tokens), 0))
            .where(_SCOPE_COLUMN[spec.scope] == spec.scope_id, usage.c.occurred_at >= start)
        )).one()
        await conn.execute(counters.insert().values(
            budget_id=budget_id, period_start=start, spent_micros_usd=int(spent[0]),
            spent_tokens=int(spent[1])))

    async def standings(self, scope: str, scope_id: str, now: datetime) -> list[Standing]:
        async with self._w.engine.connect() as conn:
            rules = await conn.run_sync(rules_for, [(scope, scope_id)])
            keys = [(r.budget_id, period_start(r.period, now)) for r in rules]
            rows = {(row.budget_id, row.period_start): row for row in (await conn.execute(
                select(counters).where(tuple_(counters.c.budget_id, counters.c.period_start)
                                       .in_(keys)))).all()} if keys else {}
        out = []
        for rule, key in zip(rules, keys, strict=True):
            row = rows.get(key)
            out.append(Standing(
                rule=rule, period_start=key[1], resets_at=period_end(rule.period, key[1]),
                spent_micros_usd=row.spent_micros_usd if row else 0,
                spent_tokens=row.spent_tokens if row else 0,
                leased_micros_usd=row.leased_micros_usd if row else 0,
                leased_tokens=row.leased_tokens if row else 0))
        return out


# Built once: the same statement object is compiled once, not per settled transaction.
_RULES = (select(budgets)
          .where(tuple_(budgets.c.scope, budgets.c.scope_id).in_(bindparam("scopes", expanding=True)))
          .order_by(budgets.c.budget_id))


def rules_for(conn: Connection, scopes: Iterable[tuple[str, str]]) -> list[BudgetRule]:
    """The rules of these (scope, scope id) pairs, in budget id order (the lock order). Sync,
    for `Writer.run`; async callers use `conn.run_sync(rules_for, scopes)`."""
    wanted = sorted({(s, i) for s, i in scopes if i})
    if not wanted:
        return []
    rows = conn.execute(_RULES, {"scopes": wanted}).all()
    return [BudgetRule(
        budget_id=r.budget_id, scope=r.scope, scope_id=r.scope_id, period=r.period,
        limit_micros_usd=r.limit_micros_usd, limit_tokens=r.limit_tokens,
        alert_thresholds=tuple(int(t) for t in r.alert_thresholds.split(",") if t),
        webhook_url=r.webhook_url, webhook_secret=r.webhook_secret) for r in rows]


async def ensure_counters(w: Writer, conn: AsyncConnection,
                          keys: Iterable[tuple[str, datetime]]) -> None:
    """Counter rows for these (budget id, period start) pairs, made at 0 where missing."""
    rows = [{"budget_id": b, "period_start": p, "spent_micros_usd": 0, "spent_tokens": 0,
             "leased_micros_usd": 0, "leased_tokens": 0, "last_micros_usd": 0, "last_tokens": 0}
            for b, p in sorted(set(keys))]
    if rows:
        await conn.execute(w.insert(counters).on_conflict_do_nothing(), rows)
