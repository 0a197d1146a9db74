"""Storage of tenants, keys and their secrets (SQLite or PostgreSQL through SQLAlchemy Core)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_auth.domain import (DEFAULT_TENANT, LIMIT_NAMES, MASTER_KEY_ID, Key, KeyFilter,
                                     RateLimits, Role, Tenant)
from switchboard_auth.tables import auth_settings, key_secrets, keys, tenants

_TENANT_LIMITS = [tenants.c[name].label(f"tenant_{name}") for name in LIMIT_NAMES]
_TENANT_POLICIES = tenants.c.guardrail_policy_ids.label("tenant_guardrail_policy_ids")
_TENANT_CACHE = tenants.c.cache_responses.label("tenant_cache_responses")
_ENDING = key_secrets.alias("ending")
_PREVIOUS_SECRET_END = (select(func.max(_ENDING.c.expires_at))
                        .where(_ENDING.c.key_id == keys.c.key_id).correlate(keys)
                        .scalar_subquery().label("previous_secret_expires_at"))
# A key with its tenant's default limits and the end of a rotated-out secret, in one row.
_KEY_ROWS = (select(keys, *_TENANT_LIMITS, _TENANT_POLICIES, _TENANT_CACHE, _PREVIOUS_SECRET_END)
             .select_from(keys.outerjoin(tenants, tenants.c.tenant_id == keys.c.tenant_id)))


class TenantDeletion(enum.Enum):
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    NOT_EMPTY = "not_empty"


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # ON CONFLICT is spelled by each dialect's own insert().
        self.insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # --- keys ---------------------------------------------------------------------------------

    async def find_by_secret_hash(self, secret_hash: str
                                  ) -> tuple[Key, str, datetime | None] | None:
        """The key this secret opens, the stored hash, and when this secret ends (None: with the
        key); one lookup by primary key."""
        query = (_KEY_ROWS.add_columns(key_secrets.c.secret_hash,
                                       key_secrets.c.expires_at.label("secret_expires_at"))
                 .join(key_secrets, key_secrets.c.key_id == keys.c.key_id)
                 .where(key_secrets.c.secret_hash == secret_hash))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return _key(row), row.secret_hash, row.secret_expires_at

    async def get_key(self, key_id: str, conn: AsyncConnection | None = None) -> Key | None:
        """The key with its tenant's defaults; on `conn` when given (then it ends the read's
        transaction, so the caller's next begin() starts with its first write)."""
        if conn is not None:
            key = await _get_key(conn, key_id)
            await conn.commit()
            return key
        async with self._engine.connect() as own:
            return await _get_key(own, key_id)

    async def insert_key(self, key: Key, secret_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(keys.insert().values(**_key_values(key)))
            await conn.execute(key_secrets.insert().values(
                secret_hash=secret_hash, key_id=key.key_id, created_at=key.created_at))

    async def update_key(self, key_id: str, values: dict[str, Any]) -> Key | None:
        async with self._engine.begin() as conn:
            if values:
                await conn.execute(update(keys).where(keys.c.key_id == key_id).values(**values))
            return await _get_key(conn, key_id)

    async def revoke_key(self, key_id: str, now: datetime) -> tuple[Key | None, bool]:
        """Set revoked_at once (revoking again keeps the first time); True when this call did."""
        async with self._engine.begin() as conn:
            done = await conn.execute(update(keys)
                                      .where(keys.c.key_id == key_id, keys.c.revoked_at.is_(None))
                                      .values(revoked_at=now, updated_at=now))
            return await _get_key(conn, key_id), done.rowcount == 1

    async def rotate_secret(self, key_id: str, new_hash: str, display: tuple[str, str],
                            now: datetime, old_secrets_end: datetime) -> Key | None:
        """Add `new_hash` as a secret of the key; every older secret ends at `old_secrets_end`
        at the latest (one already ending sooner keeps its end). Ended secrets are dropped."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(key_secrets).where(key_secrets.c.key_id == key_id,
                                                         key_secrets.c.expires_at <= now))
            await conn.execute(update(key_secrets)
                               .where(key_secrets.c.key_id == key_id,
                                      or_(key_secrets.c.expires_at.is_(None),
                                          key_secrets.c.expires_at > old_secrets_end))
                               .values(expires_at=old_secrets_end))
            await conn.execute(key_secrets.insert().values(secret_hash=new_hash, key_id=key_id,
                                                           created_at=now))
            await conn.execute(update(keys).where(keys.c.key_id == key_id)
                               .values(key_prefix=display[0], key_hint=display[1],
                                       updated_at=now))
            return await _get_key(conn, key_id)

    async def list_keys(self, where: KeyFilter, after: tuple[datetime, str] | None,
                        limit: int) -> list[Key]:
        """Keys oldest first, keyset-paginated on (created_at, key_id)."""
        query = _KEY_ROWS.order_by(keys.c.created_at, keys.c.key_id).limit(limit)
        if where.tenant_id:
            query = query.where(keys.c.tenant_id == where.tenant_id)
        if where.user_id:
            query = query.where(keys.c.user_id == where.user_id)
        if where.name_prefix:
            query = query.where(keys.c.name.startswith(where.name_prefix, autoescape=True))
        if where.revoked is not None:
            query = query.where(keys.c.revoked_at.isnot(None) if where.revoked
                                else keys.c.revoked_at.is_(None))
        if after is not None:
            created_at, key_id = after
            query = query.where(or_(keys.c.created_at > created_at,
                                    and_(keys.c.created_at == created_at, keys.c.key_id > key_id)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_key(row) for row in rows]

    async def forget_ended_secrets(self, before: datetime) -> int:
        """Drop rotated-out secrets whose grace ended before `before`."""
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(key_secrets)
                                       .where(key_secrets.c.expires_at < before))).rowcount

    async def upsert_master(self, secret_hash: str, key_prefix: str, key_hint: str,
                            now: datetime) -> None:
        """Make the `master` record hold the configured master key, replacing an older secret."""
        master = Key(key_id=MASTER_KEY_ID, name="master key", tenant_id=DEFAULT_TENANT,
                     key_prefix=key_prefix, key_hint=key_hint, role=Role.ADMIN, created_at=now)
        stmt = self.insert(keys).values(**_key_values(master))
        stmt = stmt.on_conflict_do_update(index_elements=[keys.c.key_id], set_={
            "key_prefix": key_prefix, "key_hint": key_hint, "role": Role.ADMIN.value,
            "tenant_id": DEFAULT_TENANT, "revoked_at": None, "expires_at": None})
        async with self._engine.begin() as conn:
            await conn.execute(stmt)
            await conn.execute(delete(key_secrets).where(key_secrets.c.key_id == MASTER_KEY_ID,
                                                         key_secrets.c.secret_hash != secret_hash))
            await conn.execute(self.insert(key_secrets)
                               .values(secret_hash=secret_hash, key_id=MASTER_KEY_ID,
                                       created_at=now)
                               .on_conflict_do_nothing(index_elements=[key_secrets.c.secret_hash]))

    # --- tenants ------------------------------------------------------------------------------

    async def ensure_tenant(self, tenant: Tenant) -> None:
        stmt = self.insert(tenants).values(**_tenant_values(tenant))
        async with self._engine.begin() as conn:
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=[tenants.c.tenant_id]))

    async def insert_tenant(self, tenant: Tenant) -> bool:
        """False when a tenant with this id exists already."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(tenants.insert().values(**_tenant_values(tenant)))
        except IntegrityError:
            return False
        return True

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(tenants)
                                      .where(tenants.c.tenant_id == tenant_id))).first()
        return _tenant(row) if row else None

    async def update_tenant(self, tenant_id: str, values: dict[str, Any]) -> Tenant | None:
        async with self._engine.begin() as conn:
            if values:
                await conn.execute(update(tenants).where(tenants.c.tenant_id == tenant_id)
                                   .values(**values))
            row = (await conn.execute(select(tenants)
                                      .where(tenants.c.tenant_id == tenant_id))).first()
        return _tenant(row) if row else None

    async def list_tenants(self, only: str, after: tuple[datetime, str] | None,
                           limit: int) -> list[Tenant]:
        query = select(tenants).order_by(tenants.c.created_at, tenants.c.tenant_id).limit(limit)
        if only:
            query = query.where(tenants.c.tenant_id == only)
        if after is not None:
            created_at, tenant_id = after
            query = query.where(or_(tenants.c.created_at > created_at,
                                    and_(tenants.c.created_at == created_at,
                                         tenants.c.tenant_id > tenant_id)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_tenant(r) for r in rows]

    async def delete_tenant_if_empty(self, tenant_id: str) -> tuple[TenantDeletion, int]:
        """Delete the tenant and its revoked keys unless an unrevoked key is left (that count).

        The tenant row is deleted first, so a key created meanwhile fails its tenant check or
        is counted here; the transaction rolls back when a live key remains."""
        async with self._engine.begin() as conn:
            gone = await conn.execute(delete(tenants).where(tenants.c.tenant_id == tenant_id))
            if gone.rowcount == 0:
                return TenantDeletion.NOT_FOUND, 0
            live = await conn.scalar(select(func.count()).select_from(keys).where(
                keys.c.tenant_id == tenant_id, keys.c.revoked_at.is_(None)))
            if live:
                await conn.rollback()
                return TenantDeletion.NOT_EMPTY, int(live)
            dead = select(keys.c.key_id).where(keys.c.tenant_id == tenant_id)
            await conn.execute(delete(key_secrets).where(key_secrets.c.key_id.in_(dead)))
            await conn.execute(delete(keys).where(keys.c.tenant_id == tenant_id))
        return TenantDeletion.DELETED, 0

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.scalar(select(tenants.c.tenant_id)
                                      .where(tenants.c.tenant_id == tenant_id))
        return found is not None

    # --- deployment settings ------------------------------------------------------------------

    async def claim_setting(self, name: str, value: str, *, replace: bool = False) -> str:
        """Store `value` under `name` unless one is there (or `replace`); the value stored now."""
        stmt = self.insert(auth_settings).values(name=name, value=value)
        stmt = (stmt.on_conflict_do_update(index_elements=[auth_settings.c.name],
                                           set_={"value": value}) if replace
                else stmt.on_conflict_do_nothing(index_elements=[auth_settings.c.name]))
        async with self._engine.begin() as conn:
            await conn.execute(stmt)
            stored = await conn.scalar(select(auth_settings.c.value)
                                       .where(auth_settings.c.name == name))
        return str(stored)


async def _get_key(conn: AsyncConnection, key_id: str) -> Key | None:
    row = (await conn.execute(_KEY_ROWS.where(keys.c.key_id == key_id))).first()
    return _key(row) if row else None


def _limits(m, prefix: str = "") -> RateLimits:
    return RateLimits(**{name: m[f"{prefix}{name}"] for name in LIMIT_NAMES})


def _key(row: Row) -> Key:
    m = row._mapping
    return Key(
        key_id=m["key_id"], name=m["name"], tenant_id=m["tenant_id"], user_id=m["user_id"],
        role=Role(m["role"]), key_prefix=m["key_prefix"], key_hint=m["key_hint"],
        allowed_models=tuple(m["allowed_models"] or ()), rate_limits=_limits(m),
        tenant_limits=_limits(m, "tenant_"), max_budget_micros_usd=m["max_budget_micros_usd"],
        guardrail_policy_ids=tuple(m["guardrail_policy_ids"] or ()),
        tenant_guardrail_policy_ids=tuple(m["tenant_guardrail_policy_ids"] or ()),
        created_at=m["created_at"], updated_at=m["updated_at"], expires_at=m["expires_at"],
        revoked_at=m["revoked_at"], previous_secret_expires_at=m["previous_secret_expires_at"],
        metadata=dict(m["metadata"] or {}), cache_responses=m["cache_responses"],
        tenant_cache_responses=bool(m["tenant_cache_responses"]),
    )


def _key_values(key: Key) -> dict[str, Any]:
    return {
        "key_id": key.key_id, "name": key.name, "tenant_id": key.tenant_id,
        "user_id": key.user_id, "role": key.role.value, "key_prefix": key.key_prefix,
        "key_hint": key.key_hint, "allowed_models": list(key.allowed_models),
        **limit_values(key.rate_limits), "max_budget_micros_usd": key.max_budget_micros_usd,
        "guardrail_policy_ids": list(key.guardrail_policy_ids), "created_at": key.created_at,
        "updated_at": key.updated_at, "expires_at": key.expires_at, "revoked_at": key.revoked_at,
        "metadata": dict(key.metadata), "cache_responses": key.cache_responses,
    }


def limit_values(limits: RateLimits) -> dict[str, int | None]:
    return {name: getattr(limits, name) for name in LIMIT_NAMES}


def _tenant(row: Row) -> Tenant:
    m = row._mapping
    return Tenant(tenant_id=m["tenant_id"], name=m["name"], created_at=m["created_at"],
                  updated_at=m["updated_at"],
                  guardrail_policy_ids=tuple(m["guardrail_policy_ids"] or ()),
                  default_rate_limits=_limits(m), cache_responses=bool(m["cache_responses"]))


def _tenant_values(tenant: Tenant) -> dict[str, Any]:
    return {"tenant_id": tenant.tenant_id, "name": tenant.name, "created_at": tenant.created_at,
            "updated_at": tenant.updated_at,
            "guardrail_policy_ids": list(tenant.guardrail_policy_ids),
            **limit_values(tenant.default_rate_limits), "cache_responses": tenant.cache_responses}
