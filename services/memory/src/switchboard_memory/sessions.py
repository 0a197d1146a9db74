"""Session memory: storing turns exactly once, reading, listing and deleting sessions, and the
retention sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import structlog

from switchboard_common.errors import InvalidRequest, NotFound
from switchboard_common.pagination import Cursor

from switchboard_memory import conversation
from switchboard_memory.domain import Message, Session, SessionPage, Turn, utc_now
from switchboard_memory.embedders.base import Embedder
from switchboard_memory.session_repository import SessionRepository
from switchboard_memory.settings import MemorySettings
from switchboard_memory.tokens import TokenCounter, message_text

_log = structlog.get_logger("sessions")
MAX_ID = 200


@dataclass(frozen=True)
class NewTurn:
    tenant_id: str
    key_id: str
    session_id: str
    turn_id: str
    messages: list[Message]  # the request's, as sent
    answer: dict | None
    started_at: datetime | None = None
    model: str = ""
    outcome: str = "complete"
    request_id: str = ""


@dataclass(frozen=True)
class Appended:
    stored_messages: int
    turns: int
    already_stored: bool


class Sessions:
    def __init__(self, repo: SessionRepository, embedder: Embedder, tokens: TokenCounter,
                 settings: MemorySettings, clock: Callable[[], datetime] = utc_now,
                 on_stored: Callable[[str, str], None] = lambda tenant, session: None) -> None:
        self._repo = repo
        self._embedder = embedder
        self._tokens = tokens
        self._settings = settings
        self._clock = clock
        self._on_stored = on_stored

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    async def append(self, new: NewTurn) -> Appended:
        check_id(new.session_id, "session_id")
        check_id(new.turn_id, "turn_id")
        now = self._clock()
        system, rest = conversation.split_system(new.messages)
        if len(rest) > 1:  # only then can a client have resent what the session holds
            stored = [m for t in await self._repo.turns(new.tenant_id, new.session_id)
                      for m in t.messages]
            rest = rest[conversation.overlap(stored, rest):]
        messages = rest + ([conversation.answer_message(new.answer)] if new.answer else [])
        if not messages:
            return Appended(0, 0, False)
        vectors = await self._embedder.embed([message_text(m) for m in messages])
        turn = Turn(turn_id=new.turn_id, started_at=new.started_at or now, messages=messages,
                    model=new.model, outcome=new.outcome, request_id=new.request_id,
                    tokens=sum(self._tokens.message(m) for m in messages), vectors=vectors)
        stored_now, count = await self._repo.append(
            new.tenant_id, new.session_id, new.key_id, turn,
            system_prompt=conversation.system_prompt(system),
            embedding_model=self._embedder.name, now=now,
            ttl_seconds=self._settings.session_ttl_seconds,
            max_turns=self._settings.session_max_turns)
        if stored_now:
            self._on_stored(new.tenant_id, new.session_id)
        return Appended(len(messages) if stored_now else 0, count, not stored_now)

    async def get(self, tenant_id: str, session_id: str) -> tuple[Session, list[Turn]]:
        check_id(session_id, "session_id")
        session = await self._repo.get(tenant_id, session_id, self._clock())
        if session is None:
            raise NotFound(f"No session '{session_id}'.", param="session_id",
                           code="session_not_found")
        return session, await self._repo.turns(tenant_id, session_id)

    async def history(self, tenant_id: str, session_id: str,
                      vectors: bool) -> tuple[Session | None, list[Turn]]:
        """The live session and its turns (with recall vectors shaped per message), or None."""
        session = await self._repo.get(tenant_id, session_id, self._clock())
        if session is None:
            return None, []
        turns = await self._repo.turns(tenant_id, session_id, vectors=vectors)
        if vectors:
            turns = [_shaped(t, self._embedder) for t in turns]
        return session, turns

    async def page(self, tenant_id: str, key_id: str, before: Cursor | None,
                   page_size: int) -> SessionPage:
        return await self._repo.page(tenant_id, key_id, before, page_size, self._clock())

    async def delete(self, tenant_id: str, session_id: str) -> int:
        check_id(session_id, "session_id")
        deleted = await self._repo.delete(tenant_id, session_id, self._clock())
        if deleted is None:
            raise NotFound(f"No session '{session_id}'.", param="session_id",
                           code="session_not_found")
        return deleted

    async def sweep_forever(self) -> None:
        """Delete expired sessions every retention_sweep_seconds, until cancelled."""
        while True:
            try:
                while (n := await self._repo.sweep(self._clock())) > 0:
                    _log.info("expired sessions deleted", sessions=n)
            except Exception as exc:  # noqa: BLE001 - a failed sweep is retried next period
                _log.warning("retention sweep failed", error=type(exc).__name__)
            await asyncio.sleep(self._settings.retention_sweep_seconds)


def check_id(value: str, field: str) -> None:
    if not value or len(value) > MAX_ID or not value.isprintable():
        raise InvalidRequest(f"'{field}' must be 1 to {MAX_ID} printable characters.",
                             param=field, code="invalid_value")


def _shaped(turn: Turn, embedder: Embedder) -> Turn:
    """The turn with vectors as (messages, dimensions), or None when they came from another
    embedder (its vectors would not compare with the query's)."""
    vectors = turn.vectors
    ok = (vectors is not None and turn.embedding_model == embedder.name
          and vectors.size == len(turn.messages) * embedder.dimensions)
    shaped = np.reshape(vectors, (len(turn.messages), embedder.dimensions)) if ok else None
    return Turn(**{**turn.__dict__, "vectors": shaped})
