"""Storage of usage records: idempotent batch inserts and SQL aggregates (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_common.pagination import Cursor

from switchboard_billing.domain import Spend, SpendTotals, UsageEntry, UsageFilter
from switchboard_billing.tables import usage_records as usage


class UsageRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # ON CONFLICT is spelled by each dialect's own insert().
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def insert(self, entries: Sequence[UsageEntry]) -> int:
        """Store entries in one transaction, skipping request ids already stored; returns how
        many were new. Running it twice with the same entries stores them once."""
        unique: dict[str, dict] = {}
        for entry in entries:  # a batch may carry one request twice; the first one is kept
            unique.setdefault(entry.request_id, entry.as_row())
        rows = list(unique.values())
        if not rows:
            return 0
        stmt = (self._insert(usage).on_conflict_do_nothing(index_elements=[usage.c.request_id])
                .returning(usage.c.request_id))
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt, rows)
            return len(result.all())

    async def spend(self, f: UsageFilter) -> Spend:
        """Totals and per-model totals, summed by the database."""
        errors = func.sum(case((usage.c.outcome == "error", 1), else_=0))
        query = (select(usage.c.model, func.count(), func.sum(usage.c.prompt_tokens),
                        func.sum(usage.c.completion_tokens), func.sum(usage.c.total_tokens),
                        func.sum(usage.c.cost_micros_usd), errors)
                 .where(*_conditions(f)).group_by(usage.c.model).order_by(usage.c.model))
        async with self._engine.connect() as conn:
            groups = (await conn.execute(query)).all()
        # PostgreSQL sums bigints as numeric (Decimal here); every value is whole.
        by_model = [(model, SpendTotals(*(int(v or 0) for v in values)))
                    for model, *values in groups]
        totals = sum((t for _, t in by_model), SpendTotals())
        return Spend(totals=totals, by_model=by_model)

    async def list_usage(self, f: UsageFilter, before: Cursor | None,
                         limit: int) -> list[UsageEntry]:
        """Newest first, keyset-paginated on (occurred_at, request_id)."""
        query = (select(usage).where(*_conditions(f))
                 .order_by(usage.c.occurred_at.desc(), usage.c.request_id.desc()).limit(limit))
        if before is not None:
            at, request_id = before
            query = query.where(or_(usage.c.occurred_at < at,
                                    and_(usage.c.occurred_at == at,
                                         usage.c.request_id < request_id)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [UsageEntry(**row._mapping) for row in rows]


def _conditions(f: UsageFilter) -> list:
    conditions = []
    if f.key_id:
        conditions.append(usage.c.key_id == f.key_id)
    if f.tenant_id:
        conditions.append(usage.c.tenant_id == f.tenant_id)
    if f.model:
        conditions.append(usage.c.model == f.model)
    if f.provider:
        conditions.append(usage.c.provider == f.provider)
    if f.start_time is not None:
        conditions.append(usage.c.occurred_at >= f.start_time)
    if f.end_time is not None:
        conditions.append(usage.c.occurred_at < f.end_time)
    return conditions
