"""Storage of stored responses (SQLite or PostgreSQL): one conditional upsert per write, so a
response id another tenant holds is never overwritten; chains read in one recursive query."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Integer, delete, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_memory.domain import StoredResponse
from switchboard_memory.tables import responses


def _alive(table, now: datetime):
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


class ResponseRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def put(self, stored: StoredResponse, now: datetime,
                  ttl_seconds: int) -> tuple[bool, datetime | None] | None:
        """Insert, or replace the tenant's own response of that id: (created, expires_at); None
        when another tenant holds the id. The expiry is set once, when first stored."""
        values = {"tenant_id": stored.tenant_id, "key_id": stored.key_id,
                  "previous_response_id": stored.previous_response_id, "model": stored.model,
                  "status": stored.status, "input_items": stored.input_items,
                  "response": stored.response, "created_at": stored.created_at,
                  "updated_at": now}
        insert = self._insert(responses).values(
            response_id=stored.response_id, version=1,
            expires_at=now + timedelta(seconds=ttl_seconds) if ttl_seconds else None, **values)
        # The key that created it stays its creator; everything the answer changes is replaced.
        replaced = {k: insert.excluded[k] for k in values if k != "key_id"}
        upsert = insert.on_conflict_do_update(
            index_elements=[responses.c.response_id],
            set_={**replaced, "version": responses.c.version + 1},
            where=responses.c.tenant_id == insert.excluded.tenant_id,
        ).returning(responses.c.version, responses.c.expires_at)
        async with self._engine.begin() as conn:
            row = (await conn.execute(upsert)).first()
        return None if row is None else (row.version == 1, row.expires_at)

    async def get(self, tenant_id: str, response_id: str, now: datetime) -> StoredResponse | None:
        query = select(responses).where(responses.c.response_id == response_id,
                                        responses.c.tenant_id == tenant_id, _alive(responses, now))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _stored(row) if row is not None else None

    async def chain(self, tenant_id: str, response_id: str, now: datetime,
                    limit: int) -> list[StoredResponse]:
        """The response and those it continues, oldest first, at most limit + 1 of them (so the
        caller can tell a chain over the bound); a link missing, expired or another tenant's
        ends it. Empty: the response itself is not there."""
        head = (select(responses.c.response_id, responses.c.previous_response_id,
                       literal(1, Integer).label("depth"))
                .where(responses.c.response_id == response_id, responses.c.tenant_id == tenant_id,
                       _alive(responses, now))
                .cte("chain", recursive=True))
        link = responses.alias("link")
        walk = head.union_all(
            select(link.c.response_id, link.c.previous_response_id, head.c.depth + 1)
            .where(link.c.response_id == head.c.previous_response_id,
                   link.c.tenant_id == tenant_id, _alive(link, now), head.c.depth <= limit))
        query = (select(responses).join(walk, responses.c.response_id == walk.c.response_id)
                 .order_by(walk.c.depth.desc()))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_stored(r) for r in rows]

    async def delete(self, tenant_id: str, response_id: str, now: datetime) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(responses).where(
                responses.c.response_id == response_id, responses.c.tenant_id == tenant_id,
                _alive(responses, now)))
        return result.rowcount == 1

    async def sweep(self, now: datetime, batch: int = 500) -> int:
        """Delete up to `batch` responses past their expiry; returns how many."""
        async with self._engine.begin() as conn:
            expired = (await conn.execute(
                select(responses.c.response_id)
                .where(responses.c.expires_at.is_not(None), responses.c.expires_at <= now)
                .limit(batch))).scalars().all()
            if expired:
                await conn.execute(delete(responses).where(responses.c.response_id.in_(expired)))
        return len(expired)


def _stored(row) -> StoredResponse:
    return StoredResponse(
        response_id=row.response_id, tenant_id=row.tenant_id, key_id=row.key_id,
        model=row.model, status=row.status, created_at=row.created_at,
        input_items=row.input_items, response=row.response,
        previous_response_id=row.previous_response_id, updated_at=row.updated_at,
        expires_at=row.expires_at)
