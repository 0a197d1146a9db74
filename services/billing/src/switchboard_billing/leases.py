"""Budget leases: slices of a key's and its tenant's budgets granted to router replicas.

Every grant is one conditional UPDATE of a budget's counter row (`clamp_grant`: what is asked,
or what is left under the limit), so the replicas together never hold more than the limit. A
lease draws on every budget of its key and tenant: the grant is the smallest any of them gives,
and what the others gave beyond it goes straight back, in the same transaction. Each lease holds
the same slice of every budget it draws on (`lease_allocations`); settling a usage event, giving
back, and reclaiming a lease that was not renewed move money from `held` back out of `leased`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_billing.budget_store import ensure_counters, rules_for
from switchboard_billing.domain import BudgetRule, LeaseGrant
from switchboard_billing.periods import period_end, period_start
from switchboard_billing.tables import budget_counters as counters
from switchboard_billing.tables import budget_leases, lease_allocations
from switchboard_billing.writes import Writer, clamp_grant, least

alloc = lease_allocations


@dataclass(frozen=True, slots=True)
class Amounts:
    micros_usd: int
    tokens: int


class Leases:
    def __init__(self, writer: Writer, ttl_seconds: float) -> None:
        self._w = writer
        self._ttl = timedelta(seconds=ttl_seconds)

    async def lease(self, key_id: str, tenant_id: str, replica_id: str, want: Amounts,
                    now: datetime) -> LeaseGrant:
        day_end = period_end("daily", period_start("daily", now))
        assert day_end is not None
        expires = min(now + self._ttl, day_end)
        async with self._w.begin() as conn:
            rules = await conn.run_sync(rules_for, [("key", key_id), ("tenant", tenant_id)])
            if not rules:
                return LeaseGrant(lease_id="", expires_at=expires)
            lease_id = await self._holder(conn, key_id, tenant_id, replica_id, now, expires)
            starts = {r.budget_id: period_start(r.period, now) for r in rules}
            await self._lock_allocations(conn, lease_id, starts)
            await ensure_counters(self._w, conn, starts.items())
            grant = await self._grant(conn, rules, starts, want)
            held = await self._hold(conn, lease_id, rules, grant)
            remaining = await self._remaining(conn, rules, starts)
        usd_rules = [r for r in rules if r.limit_micros_usd is not None]
        token_rules = [r for r in rules if r.limit_tokens is not None]
        return LeaseGrant(
            lease_id=lease_id, expires_at=expires, granted_micros_usd=grant.micros_usd,
            granted_tokens=grant.tokens, no_dollar_limit=not usd_rules,
            no_token_limit=not token_rules,
            held_micros_usd=min((held[r.budget_id].micros_usd for r in usd_rules), default=0),
            held_tokens=min((held[r.budget_id].tokens for r in token_rules), default=0),
            remaining_micros_usd=remaining.micros_usd, remaining_tokens=remaining.tokens)

    async def _holder(self, conn: AsyncConnection, key_id: str, tenant_id: str, replica_id: str,
                      now: datetime, expires: datetime) -> str:
        """The replica's lease for this key, tenant and day, renewed (made if new)."""
        new = self._w.insert(budget_leases).values(
            lease_id=uuid.uuid4().hex, replica_id=replica_id, key_id=key_id, tenant_id=tenant_id,
            day=now.date().isoformat(), expires_at=expires)
        stmt = new.on_conflict_do_update(
            index_elements=[budget_leases.c.replica_id, budget_leases.c.key_id,
                            budget_leases.c.tenant_id, budget_leases.c.day],
            set_={"expires_at": expires}).returning(budget_leases.c.lease_id)
        return (await conn.execute(stmt)).scalar_one()

    async def _lock_allocations(self, conn: AsyncConnection, lease_id: str,
                                starts: dict[str, datetime]) -> None:
        await conn.execute(self._w.insert(alloc).on_conflict_do_nothing(), [
            {"lease_id": lease_id, "budget_id": b, "period_start": p, "held_micros_usd": 0,
             "held_tokens": 0, "last_micros_usd": 0, "last_tokens": 0}
            for b, p in sorted(starts.items())])
        await conn.execute(select(alloc.c.budget_id).where(alloc.c.lease_id == lease_id)
                           .order_by(alloc.c.budget_id).with_for_update())

    async def _grant(self, conn: AsyncConnection, rules: list[BudgetRule],
                     starts: dict[str, datetime], want: Amounts) -> Amounts:
        """One conditional UPDATE per budget, each asked at most what the ones before gave;
        then what the first ones gave beyond the smallest grant goes back."""
        ask_usd, ask_tokens = max(want.micros_usd, 0), max(want.tokens, 0)
        given: list[tuple[BudgetRule, int, int]] = []
        for rule in rules:  # budget id order: every writer locks counters in this order
            usd = clamp_grant(rule.limit_micros_usd,
                              counters.c.spent_micros_usd + counters.c.leased_micros_usd, ask_usd)
            tok = clamp_grant(rule.limit_tokens, counters.c.spent_tokens + counters.c.leased_tokens,
                              ask_tokens)
            row = (await conn.execute(
                update(counters).where(_counter(rule.budget_id, starts[rule.budget_id]))
                .values(last_micros_usd=usd, last_tokens=tok,
                        leased_micros_usd=counters.c.leased_micros_usd + usd,
                        leased_tokens=counters.c.leased_tokens + tok)
                .returning(counters.c.last_micros_usd, counters.c.last_tokens))).one()
            if rule.limit_micros_usd is not None:
                ask_usd = min(ask_usd, row.last_micros_usd)
            if rule.limit_tokens is not None:
                ask_tokens = min(ask_tokens, row.last_tokens)
            given.append((rule, row.last_micros_usd, row.last_tokens))
        for rule, usd, tok in given:
            extra_usd = usd - ask_usd if rule.limit_micros_usd is not None else 0
            extra_tok = tok - ask_tokens if rule.limit_tokens is not None else 0
            if extra_usd or extra_tok:
                await conn.execute(
                    update(counters).where(_counter(rule.budget_id, starts[rule.budget_id]))
                    .values(leased_micros_usd=counters.c.leased_micros_usd - extra_usd,
                            leased_tokens=counters.c.leased_tokens - extra_tok))
        no_usd = all(r.limit_micros_usd is None for r in rules)
        no_tok = all(r.limit_tokens is None for r in rules)
        return Amounts(0 if no_usd else ask_usd, 0 if no_tok else ask_tokens)

    async def _hold(self, conn: AsyncConnection, lease_id: str, rules: list[BudgetRule],
                    grant: Amounts) -> dict[str, Amounts]:
        held = {}
        for rule in rules:
            usd = grant.micros_usd if rule.limit_micros_usd is not None else 0
            tok = grant.tokens if rule.limit_tokens is not None else 0
            row = (await conn.execute(
                update(alloc).where(alloc.c.lease_id == lease_id, alloc.c.budget_id == rule.budget_id)
                .values(held_micros_usd=alloc.c.held_micros_usd + usd,
                        held_tokens=alloc.c.held_tokens + tok)
                .returning(alloc.c.held_micros_usd, alloc.c.held_tokens))).one()
            held[rule.budget_id] = Amounts(row.held_micros_usd, row.held_tokens)
        return held

    async def _remaining(self, conn: AsyncConnection, rules: list[BudgetRule],
                         starts: dict[str, datetime]) -> Amounts:
        usd: list[int] = []
        tok: list[int] = []
        for rule in rules:
            row = (await conn.execute(select(counters).where(
                _counter(rule.budget_id, starts[rule.budget_id])))).one()
            if rule.limit_micros_usd is not None:
                usd.append(rule.limit_micros_usd - row.spent_micros_usd - row.leased_micros_usd)
            if rule.limit_tokens is not None:
                tok.append(rule.limit_tokens - row.spent_tokens - row.leased_tokens)
        return Amounts(max(min(usd, default=0), 0), max(min(tok, default=0), 0))

    async def give_back(self, lease_id: str, unused: Amounts) -> Amounts:
        """Return up to `unused` of what the lease holds of each budget; returns what went back
        (of the budget that held least)."""
        async with self._w.begin() as conn:
            moved = await release(conn, lease_id, unused)
        return Amounts(min((m[2] for m in moved), default=0), min((m[3] for m in moved), default=0))

    async def reclaim(self, now: datetime, grace_seconds: float, limit: int = 100) -> int:
        """Leases not renewed since their expiry plus `grace_seconds` give back what they hold,
        and go; returns how many. Usage that still names one is settled as if it had none."""
        cutoff = now - timedelta(seconds=grace_seconds)
        async with self._w.engine.connect() as conn:
            ids = (await conn.execute(select(budget_leases.c.lease_id)
                                      .where(budget_leases.c.expires_at < cutoff)
                                      .order_by(budget_leases.c.lease_id).limit(limit))).scalars().all()
        reclaimed = 0
        for lease_id in ids:
            async with self._w.begin() as conn:
                # Lock it, and make sure no renewal came in between.
                still = (await conn.execute(
                    select(budget_leases.c.lease_id).where(
                        budget_leases.c.lease_id == lease_id, budget_leases.c.expires_at < cutoff)
                    .with_for_update())).scalar_one_or_none()
                if still is None:
                    continue
                everything = Amounts(2**62, 2**62)
                await release(conn, lease_id, everything)
                await conn.execute(delete(alloc).where(alloc.c.lease_id == lease_id))
                await conn.execute(delete(budget_leases).where(budget_leases.c.lease_id == lease_id))
                reclaimed += 1
        return reclaimed


async def release(conn: AsyncConnection, lease_id: str,
                  amount: Amounts) -> list[tuple[str, datetime, int, int]]:
    """Move up to `amount` out of what the lease holds of each budget, and out of that budget's
    leased total; returns (budget id, period start, micro-dollars, tokens) moved per budget."""
    await conn.execute(select(alloc.c.budget_id).where(alloc.c.lease_id == lease_id)
                       .order_by(alloc.c.budget_id).with_for_update())  # the lock order
    usd = least(alloc.c.held_micros_usd, amount.micros_usd)
    tok = least(alloc.c.held_tokens, amount.tokens)
    rows = (await conn.execute(
        update(alloc).where(alloc.c.lease_id == lease_id)
        .values(last_micros_usd=usd, last_tokens=tok,
                held_micros_usd=alloc.c.held_micros_usd - usd, held_tokens=alloc.c.held_tokens - tok)
        .returning(alloc.c.budget_id, alloc.c.period_start, alloc.c.last_micros_usd,
                   alloc.c.last_tokens))).all()
    moved = sorted((r.budget_id, r.period_start, r.last_micros_usd, r.last_tokens) for r in rows)
    for budget_id, start, m_usd, m_tok in moved:
        if m_usd or m_tok:
            await conn.execute(update(counters).where(_counter(budget_id, start)).values(
                leased_micros_usd=counters.c.leased_micros_usd - m_usd,
                leased_tokens=counters.c.leased_tokens - m_tok))
    return moved


def _counter(budget_id: str, start: datetime):
    return and_(counters.c.budget_id == budget_id, counters.c.period_start == start)
