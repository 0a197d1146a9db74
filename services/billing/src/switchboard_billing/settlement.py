"""Settling budgets from stored usage, inside the transaction that stores it (so a redelivered
event, skipped by the insert, is never settled twice).

Each new record adds its cost and tokens to the counters of every budget of its key and tenant:
the period its lease was granted in when it names one (and that lease gives back, out of
`leased`, what it held for the request, at most what it holds), else the period it occurred in.
What crosses an alert threshold is handed to the alert outbox in the same transaction.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Connection, Row, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from switchboard_billing import alert_outbox
from switchboard_billing.budget_store import rules_for
from switchboard_billing.domain import BudgetRule, UsageEntry
from switchboard_billing.periods import period_start
from switchboard_billing.tables import budget_counters as counters
from switchboard_billing.tables import lease_allocations as alloc
from switchboard_billing.writes import Writer, least

CounterKey = tuple[str, datetime]  # (budget id, period start)


@dataclass(frozen=True, slots=True)
class Crossing:
    """A counter's spend moved from `before` to `after` in one unit ("usd" or "tokens")."""

    rule: BudgetRule
    period_start: datetime
    unit: str
    before: int
    after: int
    spent_micros_usd: int
    spent_tokens: int


def settle(w: Writer, conn: Connection, entries: Sequence[UsageEntry], now: datetime) -> int:
    """Settle newly stored entries inside the storing transaction (`Writer.run`); returns how
    many alerts were queued."""
    rules = rules_for(conn, [("key", e.key_id) for e in entries]
                            + [("tenant", e.tenant_id) for e in entries])
    if not rules:
        return 0
    by_scope: dict[tuple[str, str], list[BudgetRule]] = defaultdict(list)
    for rule in rules:
        by_scope[(rule.scope, rule.scope_id)].append(rule)
    held = _allocations(conn, {e.budget_lease_id for e in entries if e.budget_lease_id})
    spend: dict[CounterKey, list[int]] = defaultdict(lambda: [0, 0])
    used: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in entries:
        for rule in by_scope.get(("key", e.key_id), []) + by_scope.get(("tenant", e.tenant_id), []):
            lease_start = held.get((e.budget_lease_id, rule.budget_id))
            start = lease_start or period_start(rule.period, e.occurred_at)
            _add(spend[(rule.budget_id, start)], e)
            if lease_start is not None:
                _add(used[(e.budget_lease_id, rule.budget_id)], e)
    released = _release(conn, used)
    rule_of = {r.budget_id: r for r in rules}
    crossings: list[Crossing] = []
    added = dict(spend)  # a row naming a key not asked for is an error, not a silent 0
    for row in sorted(_add_spend(w, conn, added, released),
                      key=lambda r: (r.budget_id, r.period_start)):
        key = (row.budget_id, row.period_start)
        usd, tok = added[key]
        rule = rule_of[key[0]]
        for unit, delta, after in (("usd", usd, row.spent_micros_usd),
                                   ("tokens", tok, row.spent_tokens)):
            if delta:
                crossings.append(Crossing(rule, key[1], unit, after - delta, after,
                                          row.spent_micros_usd, row.spent_tokens))
    return alert_outbox.queue(w, conn, crossings, now)


def _add_spend(w: Writer, conn: Connection, spend: dict[CounterKey, list[int]],
               released: dict[CounterKey, tuple[int, int]]) -> list[Row]:
    """Every counter's spend added and its released lease holdings taken off `leased`: an
    upsert per counter (a key's and its tenant's, one or two), so a counter missing this period
    starts at 0 (as `ensure_counters` would make it) plus these amounts. Rows go in key order,
    the lock order. Returns each counter's (budget_id, period_start, spent_micros_usd,
    spent_tokens)."""
    stmt = _upsert_spend(w.dialect)
    rows = []
    for key in sorted(spend):
        usd, tok = spend[key]
        back_usd, back_tok = released.get(key, (0, 0))
        rows.append(conn.execute(stmt, {
            "budget_id": key[0], "period_start": key[1], "spent_micros_usd": usd,
            "spent_tokens": tok, "leased_micros_usd": -back_usd, "leased_tokens": -back_tok,
            "last_micros_usd": 0, "last_tokens": 0}).one())
    return rows


@functools.cache
def _upsert_spend(dialect: str):
    """Built once per dialect: the same statement object each time is compiled once (a
    multi-row VALUES built per call was compiled every transaction, ~1 ms)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(counters)
    added = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[counters.c.budget_id, counters.c.period_start],
        set_={"spent_micros_usd": counters.c.spent_micros_usd + added.spent_micros_usd,
              "spent_tokens": counters.c.spent_tokens + added.spent_tokens,
              "leased_micros_usd": counters.c.leased_micros_usd + added.leased_micros_usd,
              "leased_tokens": counters.c.leased_tokens + added.leased_tokens},
    ).returning(counters.c.budget_id, counters.c.period_start, counters.c.spent_micros_usd,
                counters.c.spent_tokens)


def _add(totals: list[int], e: UsageEntry) -> None:
    totals[0] += e.cost_micros_usd
    totals[1] += e.total_tokens


# Locked here (in key order, before any counter) for `_release`'s updates.
_ALLOCATIONS = (select(alloc.c.lease_id, alloc.c.budget_id, alloc.c.period_start)
                .where(alloc.c.lease_id.in_(bindparam("lease_ids", expanding=True)))
                .order_by(alloc.c.lease_id, alloc.c.budget_id).with_for_update())
_TAKE_USD = least(alloc.c.held_micros_usd, bindparam("usd", type_=BigInteger))
_TAKE_TOKENS = least(alloc.c.held_tokens, bindparam("tokens", type_=BigInteger))
_RELEASE = (update(alloc)
            .where(alloc.c.lease_id == bindparam("lease"), alloc.c.budget_id == bindparam("budget"))
            .values(last_micros_usd=_TAKE_USD, last_tokens=_TAKE_TOKENS,
                    held_micros_usd=alloc.c.held_micros_usd - _TAKE_USD,
                    held_tokens=alloc.c.held_tokens - _TAKE_TOKENS)
            .returning(alloc.c.period_start, alloc.c.last_micros_usd, alloc.c.last_tokens))


def _allocations(conn: Connection, lease_ids: set[str]) -> dict[tuple[str, str], datetime]:
    if not lease_ids:
        return {}
    rows = conn.execute(_ALLOCATIONS, {"lease_ids": sorted(lease_ids)}).all()
    return {(r.lease_id, r.budget_id): r.period_start for r in rows}


def _release(conn: Connection,
             used: dict[tuple[str, str], list[int]]) -> dict[CounterKey, tuple[int, int]]:
    """What each lease held for these requests leaves it (at most what it holds); its rows
    were locked by `_allocations`."""
    out: dict[CounterKey, tuple[int, int]] = {}
    for (lease_id, budget_id), (usd, tok) in sorted(used.items()):
        row = conn.execute(_RELEASE, {"lease": lease_id, "budget": budget_id, "usd": usd,
                                      "tokens": tok}).one()
        key = (budget_id, row.period_start)
        before = out.get(key, (0, 0))
        out[key] = (before[0] + row.last_micros_usd, before[1] + row.last_tokens)
    return out
