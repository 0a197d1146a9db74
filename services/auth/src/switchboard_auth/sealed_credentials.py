"""Provider credentials as auth keeps them: rows of ciphertext the routers sealed. Auth cannot
open them (the encryption key lives only with the routers); it stores, lists and deletes them,
and announces each change on `credentials.changed` so every router reloads at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from switchboard_common.errors import Conflict, InvalidRequest, NotFound

from switchboard_auth.domain import utc_now
from switchboard_auth.tables import provider_credentials as table

MAX_SEALED_BYTES = 16_384  # an API key or an OAuth token set, sealed, with room to spare
Announce = Callable[[str, str], Awaitable[None]]  # (credential_id, provider)


@dataclass(frozen=True, slots=True)
class SealedCredential:
    credential_id: str
    provider: str
    hint: str
    sealed: bytes  # ciphertext: auth holds no key to open it
    weight: int
    rpm: int | None
    created_at: datetime
    updated_at: datetime


def _row(r) -> SealedCredential:
    return SealedCredential(r.credential_id, r.provider, r.hint, bytes(r.sealed), r.weight, r.rpm,
                            r.created_at, r.updated_at)


class SealedCredentials:
    def __init__(self, engine: AsyncEngine, announce: Announce) -> None:
        self._engine = engine
        self._announce = announce

    async def put(self, c: SealedCredential, *, create: bool) -> SealedCredential:
        _check(c)
        now = utc_now()
        async with self._engine.begin() as conn:
            if create:
                try:
                    await conn.execute(table.insert().values(
                        credential_id=c.credential_id, provider=c.provider, hint=c.hint,
                        sealed=c.sealed, weight=c.weight, rpm=c.rpm, created_at=now, updated_at=now))
                except IntegrityError:
                    raise Conflict(f"The credential '{c.credential_id}' exists already.",
                                   param="credential_id") from None
            else:
                done = await conn.execute(
                    update(table).where(table.c.credential_id == c.credential_id)
                    .values(hint=c.hint, sealed=c.sealed, weight=c.weight, rpm=c.rpm, updated_at=now))
                if not done.rowcount:
                    raise _missing(c.credential_id)
            row = (await conn.execute(select(table).where(
                table.c.credential_id == c.credential_id))).one()
        await self._announce(c.credential_id, c.provider)
        return _row(row)

    async def list(self, provider: str = "") -> list[SealedCredential]:
        query = select(table).order_by(table.c.created_at, table.c.credential_id)
        if provider:
            query = query.where(table.c.provider == provider)
        async with self._engine.connect() as conn:
            return [_row(r) for r in await conn.execute(query)]

    async def delete(self, credential_id: str) -> SealedCredential:
        async with self._engine.begin() as conn:
            row = (await conn.execute(select(table).where(
                table.c.credential_id == credential_id))).first()
            if row is None:
                raise _missing(credential_id)
            await conn.execute(delete(table).where(table.c.credential_id == credential_id))
        await self._announce(credential_id, row.provider)
        return _row(row)


def _missing(credential_id: str) -> NotFound:
    return NotFound(f"No provider credential '{credential_id}'.", param="credential_id",
                    code="credential_not_found")


def _check(c: SealedCredential) -> None:
    for name, value, limit in (("credential_id", c.credential_id, 64), ("provider", c.provider, 128),
                               ("hint", c.hint, 32)):
        if not value or len(value) > limit:
            raise InvalidRequest(f"'{name}' must have 1 to {limit} characters.", param=name,
                                 code="invalid_value")
    if not c.sealed or len(c.sealed) > MAX_SEALED_BYTES:
        raise InvalidRequest(f"'sealed' must have 1 to {MAX_SEALED_BYTES} bytes.", param="sealed",
                             code="invalid_value")
    if c.weight < 1 or (c.rpm is not None and c.rpm < 1):
        raise InvalidRequest("'weight' must be at least 1, and 'rpm' unset or at least 1.",
                             param="weight", code="invalid_value")
