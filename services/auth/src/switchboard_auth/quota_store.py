"""Quota counters in auth's database: every grant, return and charge is one statement that checks
and changes a counter at once (an upsert with a condition), never a read and then a write.

The statements run the same on SQLite and PostgreSQL: `INSERT ... ON CONFLICT DO UPDATE ...
WHERE ... RETURNING`. In an UPDATE's SET every expression sees the row as it was before, so
`last_grant` records what this very statement added, and the caller learns its grant from the
row the statement returned (no row: the condition failed, nothing was granted).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_auth.tables import parallel_leases, quota_counters

REQUESTS_MINUTE = "requests_minute"
TOKENS_MINUTE = "tokens_minute"
TOKENS_DAY = "tokens_day"
_C = quota_counters.c


class QuotaStore:
    def __init__(self, insert) -> None:
        self._insert = insert  # the dialect's insert(), for ON CONFLICT

    async def grant(self, conn: AsyncConnection, key_id: str, kind: str, window_start: int,
                    wanted: int, limit: int) -> int:
        """Add up to `wanted` to the counter, never past `limit`; returns what was added."""
        if wanted <= 0 or limit <= 0:
            return 0
        first = min(wanted, limit)
        fits = _C.used + wanted <= limit
        added = case((fits, literal(wanted)), else_=limit - _C.used)
        stmt = (self._insert(quota_counters)
                .values(key_id=key_id, kind=kind, window_start=window_start, used=first,
                        last_grant=first)
                .on_conflict_do_update(
                    index_elements=[_C.key_id, _C.kind, _C.window_start],
                    set_={"used": _C.used + added, "last_grant": added},
                    where=_C.used < limit)
                .returning(_C.used, _C.last_grant))
        row = (await conn.execute(stmt)).first()
        return int(row.last_grant) if row is not None else 0

    async def charge(self, conn: AsyncConnection, key_id: str, kind: str, window_start: int,
                     amount: int) -> int:
        """Add `amount` whatever the limit (it was spent); returns the counter's new value."""
        stmt = (self._insert(quota_counters)
                .values(key_id=key_id, kind=kind, window_start=window_start, used=amount,
                        last_grant=amount)
                .on_conflict_do_update(index_elements=[_C.key_id, _C.kind, _C.window_start],
                                       set_={"used": _C.used + amount, "last_grant": amount})
                .returning(_C.used))
        return int((await conn.execute(stmt)).scalar_one())

    async def give_back(self, conn: AsyncConnection, key_id: str, kind: str, window_start: int,
                        amount: int) -> int:
        """Take up to `amount` off the counter (never below 0); returns what was taken off."""
        if amount <= 0:
            return 0
        taken = case((_C.used >= amount, literal(amount)), else_=_C.used)
        stmt = (update(quota_counters)
                .where(_C.key_id == key_id, _C.kind == kind, _C.window_start == window_start,
                       _C.used > 0)
                .values(used=_C.used - taken, last_grant=-taken)
                .returning(_C.last_grant))
        row = (await conn.execute(stmt)).first()
        return -int(row.last_grant) if row is not None else 0

    async def used(self, conn: AsyncConnection, key_id: str, kind: str, window_start: int) -> int:
        """The counter as this transaction sees it (for the `remaining` figures shown)."""
        value = await conn.scalar(select(_C.used).where(
            _C.key_id == key_id, _C.kind == kind, _C.window_start == window_start))
        return int(value or 0)

    async def forget_before(self, conn: AsyncConnection, window_start: int,
                            now: datetime) -> int:
        """Drop counters of windows that started before `window_start`, and lapsed parallel
        slots of every replica (a replica that went away leaves its row behind)."""
        counters = await conn.execute(delete(quota_counters)
                                      .where(_C.window_start < window_start))
        lapsed = await conn.execute(delete(parallel_leases)
                                    .where(parallel_leases.c.expires_at <= now))
        return counters.rowcount + lapsed.rowcount

    # --- parallel requests ------------------------------------------------------------------

    async def hold_parallel(self, conn: AsyncConnection, key_id: str, replica_id: str,
                            wanted: int, limit: int, now: datetime,
                            expires_at: datetime) -> tuple[int, int]:
        """Grant this replica up to `wanted` more slots, the unlapsed slots of every replica
        together never past `limit`, and renew what it holds; returns (granted, held now).

        The sum over replicas spans rows, so replicas of one key take turns: on PostgreSQL
        through a per-key advisory lock held to the end of the transaction, on SQLite through
        the write lock its first statement (an upsert) takes."""
        pl = parallel_leases.c
        if conn.dialect.name == "postgresql":
            await conn.execute(select(func.pg_advisory_xact_lock(
                func.hashtextextended(literal("parallel:" + key_id), 0))))
        await conn.execute(self._insert(parallel_leases)
                           .values(key_id=key_id, replica_id=replica_id, slots=0, last_grant=0,
                                   expires_at=expires_at)
                           .on_conflict_do_update(index_elements=[pl.key_id, pl.replica_id],
                                                  set_={"expires_at": expires_at}))
        await conn.execute(delete(parallel_leases).where(pl.key_id == key_id,
                                                         pl.expires_at <= now))
        other = parallel_leases.alias("other")
        others = (select(func.coalesce(func.sum(other.c.slots), 0))
                  .where(other.c.key_id == key_id, other.c.replica_id != replica_id)
                  .scalar_subquery())
        room = limit - others - pl.slots
        added = case((room >= wanted, literal(wanted)), (room > 0, room), else_=literal(0))
        row = (await conn.execute(
            update(parallel_leases)
            .where(pl.key_id == key_id, pl.replica_id == replica_id)
            .values(slots=pl.slots + added, last_grant=added)
            .returning(pl.slots, pl.last_grant))).one()
        return int(row.last_grant), int(row.slots)

    async def release_parallel(self, conn: AsyncConnection, key_id: str, replica_id: str,
                               amount: int) -> int:
        """Give back up to `amount` of this replica's slots; returns how many it gave back."""
        if amount <= 0:
            return 0
        pl = parallel_leases.c
        taken = case((pl.slots >= amount, literal(amount)), else_=pl.slots)
        row = (await conn.execute(
            update(parallel_leases)
            .where(pl.key_id == key_id, pl.replica_id == replica_id)
            .values(slots=pl.slots - taken, last_grant=-taken)
            .returning(pl.last_grant))).first()
        return -int(row.last_grant) if row is not None else 0
