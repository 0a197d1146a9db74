"""Storage of usage records: idempotent batch inserts, SQL aggregates (SQLite or PostgreSQL) and
keyset-paginated reads, newest first for pages and oldest first for exports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_common.pagination import Cursor

from switchboard_billing.domain import Spend, SpendGroup, SpendTotals, UsageEntry, UsageFilter
from switchboard_billing.ledger_insert import LedgerInsert
from switchboard_billing.tables import usage_records as usage

_TOTALS = (
    func.count(), func.sum(usage.c.prompt_tokens), func.sum(usage.c.completion_tokens),
    func.sum(usage.c.total_tokens), func.sum(usage.c.cost_micros_usd),
    func.sum(case((usage.c.outcome == "error", 1), else_=0)),
    func.sum(case((usage.c.price_unknown, 1), else_=0)),
    func.sum(usage.c.cached_prompt_tokens), func.sum(usage.c.reasoning_tokens),
)
_COLUMNS = {"model": usage.c.model, "provider": usage.c.provider, "key": usage.c.key_id,
            "tenant": usage.c.tenant_id, "user": usage.c.user_id}


class UsageRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._ledger = LedgerInsert(engine.dialect)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def insert(self, entries: Sequence[UsageEntry]) -> int:
        """Store entries in one transaction, skipping event ids already stored; returns how
        many were new. Running it twice with the same entries stores them once."""
        async with self._engine.begin() as conn:
            return len(await conn.run_sync(self.insert_in, entries))

    def insert_in(self, conn: Connection, entries: Sequence[UsageEntry]) -> set[str]:
        """The insert inside the caller's transaction (`Writer.run`); returns the event ids
        that were new (a batch may carry one event twice; the first one is kept)."""
        return self._ledger.new_in(conn, entries)

    async def spend(self, f: UsageFilter, group_by: Sequence[str] = ()) -> Spend:
        """Totals, per-model totals and the groups asked for, summed by the database."""
        async with self._engine.connect() as conn:
            by_model = [(keys["model"], totals)
                        for keys, totals in await self._grouped(conn, f, ["model"])]
            groups = ([SpendGroup(keys, totals)
                       for keys, totals in await self._grouped(conn, f, list(group_by))]
                      if group_by else [])
        totals = sum((t for _, t in by_model), SpendTotals())
        return Spend(totals=totals, by_model=by_model, groups=groups, start_time=f.start_time,
                     end_time=f.end_time)

    async def _grouped(self, conn: AsyncConnection, f: UsageFilter,
                       names: list[str]) -> list[tuple[dict[str, str], SpendTotals]]:
        keys = [self._group_column(name) for name in names]
        query = (select(*keys, *_TOTALS).where(*conditions(f)).group_by(*keys)
                 .order_by(*keys))
        rows = (await conn.execute(query)).all()
        out = []
        for row in rows:
            values = [_hour(v) if name == "hour" else str(v or "") for name, v in
                      zip(names, row[:len(names)], strict=True)]
            # PostgreSQL sums bigints as numeric (Decimal here); every value is whole.
            totals = SpendTotals(*(int(v or 0) for v in row[len(names):]))
            out.append((dict(zip(names, values, strict=True)), totals))
        return out

    def _group_column(self, name: str):
        if name in _COLUMNS:
            return _COLUMNS[name].label(name)
        at = usage.c.occurred_at
        if self._dialect == "postgresql":
            utc = func.timezone("UTC", at)
            fmt = "YYYY-MM-DD" if name == "day" else 'YYYY-MM-DD"T"HH24'
            return func.to_char(utc, fmt).label(name)
        # SQLite holds the UTC time as text, "YYYY-MM-DD HH:MM:SS.ffffff".
        return func.substr(at, 1, 10 if name == "day" else 13).label(name)

    async def list_usage(self, f: UsageFilter, before: Cursor | None,
                         limit: int) -> list[UsageEntry]:
        """Newest first, keyset-paginated on (occurred_at, event_id)."""
        query = (select(usage).where(*conditions(f))
                 .order_by(usage.c.occurred_at.desc(), usage.c.event_id.desc()).limit(limit))
        if before is not None:
            at, event_id = before
            query = query.where(or_(usage.c.occurred_at < at,
                                    and_(usage.c.occurred_at == at,
                                         usage.c.event_id < event_id)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [UsageEntry(**row._mapping) for row in rows]

    async def iter_usage(self, f: UsageFilter, batch: int) -> AsyncIterator[list[UsageEntry]]:
        """Every record the filter selects, oldest first, `batch` rows per query: memory stays
        flat whatever the count, and no transaction stays open between batches."""
        after: tuple[datetime, str] | None = None
        while True:
            query = (select(usage).where(*conditions(f))
                     .order_by(usage.c.occurred_at, usage.c.event_id).limit(batch))
            if after is not None:
                at, event_id = after
                query = query.where(or_(usage.c.occurred_at > at,
                                        and_(usage.c.occurred_at == at,
                                             usage.c.event_id > event_id)))
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            if not rows:
                return
            entries = [UsageEntry(**row._mapping) for row in rows]
            yield entries
            if len(rows) < batch:
                return
            after = (entries[-1].occurred_at, entries[-1].event_id)


def conditions(f: UsageFilter) -> list:
    out = []
    for column, value in ((usage.c.key_id, f.key_id), (usage.c.tenant_id, f.tenant_id),
                          (usage.c.model, f.model), (usage.c.provider, f.provider),
                          (usage.c.user_id, f.user_id)):
        if value:
            out.append(column == value)
    if f.start_time is not None:
        out.append(usage.c.occurred_at >= f.start_time)
    if f.end_time is not None:
        out.append(usage.c.occurred_at < f.end_time)
    return out


def _hour(value) -> str:
    """"YYYY-MM-DD HH" (SQLite) or "YYYY-MM-DDTHH" (PostgreSQL) as an RFC 3339 hour."""
    text = str(value or "")
    return f"{text[:10]}T{text[11:13]}:00:00Z" if len(text) >= 13 else text


