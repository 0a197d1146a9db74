"""Storage of tenants and keys (SQLite or PostgreSQL through SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_auth.domain import DEFAULT_TENANT, MASTER_KEY_ID, Key, RateLimits, Tenant
from switchboard_auth.tables import keys, tenants


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # ON CONFLICT is spelled by each dialect's own insert().
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # --- keys ---------------------------------------------------------------------------------

    async def find_by_hash(self, key_hash: str) -> tuple[Key, str] | None:
        """The key whose stored hash is `key_hash`, with that hash (one indexed SELECT)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(keys).where(keys.c.key_hash == key_hash))).first()
        return (_key(row), row.key_hash) if row else None

    async def get_key(self, key_id: str) -> Key | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(keys).where(keys.c.key_id == key_id))).first()
        return _key(row) if row else None

    async def insert_key(self, key: Key, key_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(keys.insert().values(key_hash=key_hash, **_key_values(key)))

    async def update_key(self, key_id: str, values: dict[str, Any]) -> Key | None:
        async with self._engine.begin() as conn:
            if values:
                await conn.execute(update(keys).where(keys.c.key_id == key_id).values(**values))
            row = (await conn.execute(select(keys).where(keys.c.key_id == key_id))).first()
        return _key(row) if row else None

    async def revoke_key(self, key_id: str, now: datetime) -> Key | None:
        """Set revoked_at once; revoking again keeps the first time."""
        async with self._engine.begin() as conn:
            await conn.execute(update(keys)
                               .where(keys.c.key_id == key_id, keys.c.revoked_at.is_(None))
                               .values(revoked_at=now))
            row = (await conn.execute(select(keys).where(keys.c.key_id == key_id))).first()
        return _key(row) if row else None

    async def list_keys(self, tenant_id: str, after: tuple[datetime, str] | None,
                        limit: int) -> list[Key]:
        """Keys oldest first, keyset-paginated on (created_at, key_id)."""
        query = select(keys).order_by(keys.c.created_at, keys.c.key_id).limit(limit)
        if tenant_id:
            query = query.where(keys.c.tenant_id == tenant_id)
        if after is not None:
            created_at, key_id = after
            query = query.where(or_(keys.c.created_at > created_at,
                                    and_(keys.c.created_at == created_at, keys.c.key_id > key_id)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_key(row) for row in rows]

    async def upsert_master(self, key_hash: str, key_prefix: str, now: datetime) -> None:
        """Make the `master` record hold the configured master key, replacing an older hash."""
        master = Key(key_id=MASTER_KEY_ID, name="master key", tenant_id=DEFAULT_TENANT,
                     key_prefix=key_prefix, is_admin=True, created_at=now)
        stmt = self._insert(keys).values(key_hash=key_hash, **_key_values(master))
        stmt = stmt.on_conflict_do_update(index_elements=[keys.c.key_id], set_={
            "key_hash": key_hash, "key_prefix": key_prefix, "is_admin": True,
            "tenant_id": DEFAULT_TENANT, "revoked_at": None, "expires_at": None,
        })
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    # --- tenants ------------------------------------------------------------------------------

    async def ensure_tenant(self, tenant: Tenant) -> None:
        stmt = self._insert(tenants).values(**_tenant_values(tenant))
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

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.scalar(select(tenants.c.tenant_id)
                                      .where(tenants.c.tenant_id == tenant_id))
        return found is not None

    async def list_tenants(self) -> list[Tenant]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(tenants).order_by(tenants.c.created_at,
                                                                tenants.c.tenant_id))).all()
        return [Tenant(tenant_id=r.tenant_id, name=r.name, created_at=r.created_at,
                       guardrail_policy_ids=tuple(r.guardrail_policy_ids or ())) for r in rows]


def _key(row: Row) -> Key:
    m = row._mapping
    return Key(
        key_id=m["key_id"], name=m["name"], tenant_id=m["tenant_id"], key_prefix=m["key_prefix"],
        allowed_models=tuple(m["allowed_models"] or ()),
        rate_limits=RateLimits(m["requests_per_minute"], m["tokens_per_minute"]),
        max_budget_micros_usd=m["max_budget_micros_usd"],
        guardrail_policy_ids=tuple(m["guardrail_policy_ids"] or ()), is_admin=m["is_admin"],
        created_at=m["created_at"], expires_at=m["expires_at"], revoked_at=m["revoked_at"],
        metadata=dict(m["metadata"] or {}),
    )


def _key_values(key: Key) -> dict[str, Any]:
    return {
        "key_id": key.key_id, "name": key.name, "tenant_id": key.tenant_id,
        "key_prefix": key.key_prefix, "allowed_models": list(key.allowed_models),
        "requests_per_minute": key.rate_limits.requests_per_minute,
        "tokens_per_minute": key.rate_limits.tokens_per_minute,
        "max_budget_micros_usd": key.max_budget_micros_usd,
        "guardrail_policy_ids": list(key.guardrail_policy_ids), "is_admin": key.is_admin,
        "created_at": key.created_at, "expires_at": key.expires_at, "revoked_at": key.revoked_at,
        "metadata": dict(key.metadata),
    }


def _tenant_values(tenant: Tenant) -> dict[str, Any]:
    return {"tenant_id": tenant.tenant_id, "name": tenant.name, "created_at": tenant.created_at,
            "guardrail_policy_ids": list(tenant.guardrail_policy_ids)}
