"""Storage of sessions and their turns (SQLite or PostgreSQL): idempotent appends by turn id,
ordered reads, retention (expiry and a turn bound) enforced in the same transactions."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import orjson
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_common.pagination import Cursor

from switchboard_memory.domain import Session, SessionPage, Turn
from switchboard_memory.tables import sessions, turns


class SessionRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def get(self, tenant_id: str, session_id: str, now: datetime) -> Session | None:
        async with self._engine.connect() as conn:
            return await _live_session(conn, tenant_id, session_id, now)

    async def turns(self, tenant_id: str, session_id: str, *, vectors: bool = False) -> list[Turn]:
        """The session's turns, oldest first."""
        columns = [turns.c.turn_id, turns.c.started_at, turns.c.messages, turns.c.model,
                   turns.c.outcome, turns.c.tokens, turns.c.request_id, turns.c.embedding_model]
        if vectors:
            columns.append(turns.c.vectors)
        query = (select(*columns)
                 .where(turns.c.tenant_id == tenant_id, turns.c.session_id == session_id)
                 .order_by(turns.c.started_at, turns.c.turn_id))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Turn(turn_id=r.turn_id, started_at=r.started_at, messages=orjson.loads(r.messages),
                     model=r.model, outcome=r.outcome, tokens=r.tokens, request_id=r.request_id,
                     vectors=_vectors(r.vectors) if vectors else None,
                     embedding_model=r.embedding_model) for r in rows]

    async def append(self, tenant_id: str, session_id: str, key_id: str, turn: Turn, *,
                     system_prompt: str | None, embedding_model: str, now: datetime,
                     ttl_seconds: int, max_turns: int) -> tuple[bool, int]:
        """Store the turn unless its turn_id is stored already: (stored, turns now)."""
        expires = now + timedelta(seconds=ttl_seconds) if ttl_seconds else None
        async with self._engine.begin() as conn:
            await self._open(conn, tenant_id, session_id, key_id, now)
            stored = (await conn.execute(
                self._insert(turns).values(
                    tenant_id=tenant_id, session_id=session_id, turn_id=turn.turn_id,
                    started_at=turn.started_at, request_id=turn.request_id, model=turn.model,
                    outcome=turn.outcome, messages=orjson.dumps(turn.messages).decode(),
                    tokens=turn.tokens, embedding_model=embedding_model,
                    vectors=_blob(turn.vectors), created_at=now)
                .on_conflict_do_nothing().returning(turns.c.turn_id))).first() is not None
            where = _session_key(tenant_id, session_id)
            if not stored:
                count = (await conn.execute(select(sessions.c.turn_count).where(*where))).scalar_one()
                return False, count
            values: dict = {"turn_count": sessions.c.turn_count + 1, "updated_at": now,
                            "expires_at": expires}
            if system_prompt is not None:
                values["system_prompt"] = system_prompt
            count = (await conn.execute(update(sessions).where(*where).values(**values)
                                        .returning(sessions.c.turn_count))).scalar_one()
            if count > max_turns:
                count -= await _drop_oldest(conn, tenant_id, session_id, count - max_turns)
            return True, count

    async def _open(self, conn: AsyncConnection, tenant_id: str, session_id: str, key_id: str,
                    now: datetime) -> None:
        """Make the session row exist; one that expired (not yet swept) starts afresh."""
        where = _session_key(tenant_id, session_id)
        expired = (await conn.execute(select(sessions.c.session_id).where(
            *where, sessions.c.expires_at.is_not(None), sessions.c.expires_at <= now))).first()
        if expired is not None:
            await _delete_session(conn, tenant_id, session_id)
        await conn.execute(self._insert(sessions).values(
            tenant_id=tenant_id, session_id=session_id, key_id=key_id, created_at=now,
            updated_at=now, expires_at=None, turn_count=0, system_prompt="", summary="")
            .on_conflict_do_nothing())

    async def page(self, tenant_id: str, key_id: str, before: Cursor | None, limit: int,
                   now: datetime) -> SessionPage:
        """Most recently updated first, keyset-paginated on (updated_at, session_id)."""
        query = (select(sessions).where(sessions.c.tenant_id == tenant_id, _alive(now))
                 .order_by(sessions.c.updated_at.desc(), sessions.c.session_id.desc())
                 .limit(limit + 1))
        if key_id:
            query = query.where(sessions.c.key_id == key_id)
        if before is not None:
            at, last = before
            query = query.where(or_(sessions.c.updated_at < at, and_(
                sessions.c.updated_at == at, sessions.c.session_id < last)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        page = [_session(r) for r in rows[:limit]]
        more = len(rows) > limit
        return SessionPage(page, (page[-1].updated_at, page[-1].session_id) if more else None)

    async def delete(self, tenant_id: str, session_id: str, now: datetime) -> int | None:
        """Turns deleted with the session; None when there was no live session."""
        async with self._engine.begin() as conn:
            if await _live_session(conn, tenant_id, session_id, now) is None:
                return None
            return await _delete_session(conn, tenant_id, session_id)

    async def sweep(self, now: datetime, batch: int = 500) -> int:
        """Delete sessions past their expiry (and their turns); returns how many."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(
                select(sessions.c.tenant_id, sessions.c.session_id)
                .where(sessions.c.expires_at.is_not(None), sessions.c.expires_at <= now)
                .limit(batch))).all()
            for tenant_id, session_id in rows:
                await _delete_session(conn, tenant_id, session_id)
        return len(rows)

    async def set_summary(self, tenant_id: str, session_id: str, summary: str,
                          through: tuple[datetime, str], previous: tuple[datetime, str] | None
                          ) -> bool:
        """Record a summary made from the state `previous`; False if another was recorded since."""
        where = [*_session_key(tenant_id, session_id)]
        if previous is None:
            where.append(sessions.c.summary_through_at.is_(None))
        else:
            where += [sessions.c.summary_through_at == previous[0],
                      sessions.c.summary_through_turn == previous[1]]
        async with self._engine.begin() as conn:
            result = await conn.execute(update(sessions).where(*where).values(
                summary=summary, summary_through_at=through[0], summary_through_turn=through[1]))
            return result.rowcount == 1


def _session_key(tenant_id: str, session_id: str) -> list:
    return [sessions.c.tenant_id == tenant_id, sessions.c.session_id == session_id]


def _alive(now: datetime):
    return or_(sessions.c.expires_at.is_(None), sessions.c.expires_at > now)


async def _live_session(conn: AsyncConnection, tenant_id: str, session_id: str,
                        now: datetime) -> Session | None:
    row = (await conn.execute(select(sessions).where(
        *_session_key(tenant_id, session_id), _alive(now)))).first()
    return _session(row) if row is not None else None


async def _delete_session(conn: AsyncConnection, tenant_id: str, session_id: str) -> int:
    deleted = await conn.execute(delete(turns).where(
        turns.c.tenant_id == tenant_id, turns.c.session_id == session_id))
    await conn.execute(delete(sessions).where(*_session_key(tenant_id, session_id)))
    return deleted.rowcount


async def _drop_oldest(conn: AsyncConnection, tenant_id: str, session_id: str, n: int) -> int:
    oldest = (await conn.execute(
        select(turns.c.turn_id).where(turns.c.tenant_id == tenant_id,
                                      turns.c.session_id == session_id)
        .order_by(turns.c.started_at, turns.c.turn_id).limit(n))).scalars().all()
    await conn.execute(delete(turns).where(turns.c.tenant_id == tenant_id,
                                           turns.c.session_id == session_id,
                                           turns.c.turn_id.in_(oldest)))
    await conn.execute(update(sessions).where(*_session_key(tenant_id, session_id))
                       .values(turn_count=sessions.c.turn_count - len(oldest)))
    return len(oldest)


def _session(row) -> Session:
    through = ((row.summary_through_at, row.summary_through_turn)
               if row.summary_through_at is not None else None)
    return Session(tenant_id=row.tenant_id, session_id=row.session_id, key_id=row.key_id,
                   created_at=row.created_at, updated_at=row.updated_at,
                   expires_at=row.expires_at, turn_count=row.turn_count,
                   system_prompt=row.system_prompt, summary=row.summary, summary_through=through)


def _blob(vectors) -> bytes | None:
    return None if vectors is None else np.ascontiguousarray(vectors, dtype=np.float32).tobytes()


def _vectors(blob: bytes | None):
    return None if blob is None else np.frombuffer(blob, dtype=np.float32)


