"""Storage of guardrail policies (SQLite or PostgreSQL through SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_guardrails.domain import Action, FailMode, Policy, Rule
from switchboard_guardrails.tables import policies


class NameTaken(Exception):
    """Another policy of the tenant has this name."""


class PolicyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, policy: Policy) -> None:
        """Raises NameTaken when the tenant has a policy of that name already."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(policies.insert().values(**_values(policy)))
        except IntegrityError:
            raise NameTaken(policy.name) from None

    async def get(self, policy_id: str) -> Policy | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(policies)
                                      .where(policies.c.policy_id == policy_id))).first()
        return _policy(row) if row else None

    async def get_many(self, policy_ids: Sequence[str]) -> list[Policy]:
        """The policies that exist among `policy_ids` (one SELECT), in no particular order."""
        if not policy_ids:
            return []
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(policies)
                                       .where(policies.c.policy_id.in_(set(policy_ids))))).all()
        return [_policy(row) for row in rows]

    async def replace(self, policy: Policy) -> Policy | None:
        """Store the policy's mutable fields; None when it does not exist, NameTaken when the
        new name is another policy's."""
        values = _values(policy)
        for fixed in ("policy_id", "tenant_id", "created_at"):
            values.pop(fixed)
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(update(policies)
                                            .where(policies.c.policy_id == policy.policy_id)
                                            .values(**values))
        except IntegrityError:
            raise NameTaken(policy.name) from None
        return policy if result.rowcount else None

    async def delete(self, policy_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(policies).where(policies.c.policy_id == policy_id))
        return bool(result.rowcount)

    async def list(self, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> list[Policy]:
        """Oldest first, keyset-paginated on (created_at, policy_id); every tenant's when
        `tenant_id` is empty."""
        query = (select(policies).order_by(policies.c.created_at, policies.c.policy_id)
                 .limit(limit))
        if tenant_id:
            query = query.where(policies.c.tenant_id == tenant_id)
        if after is not None:
            created_at, policy_id = after
            query = query.where(or_(policies.c.created_at > created_at,
                                    and_(policies.c.created_at == created_at,
                                         policies.c.policy_id > policy_id)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_policy(row) for row in rows]


def _rules_json(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [{"check": r.check, "action": r.action.value, "options": dict(r.options)} for r in rules]


def _rules(data: list[dict[str, Any]] | None) -> tuple[Rule, ...]:
    return tuple(Rule(check=r["check"], action=Action(r["action"]), options=r.get("options") or {})
                 for r in data or ())


def _values(policy: Policy) -> dict[str, Any]:
    return {"policy_id": policy.policy_id, "tenant_id": policy.tenant_id, "name": policy.name,
            "input_rules": _rules_json(policy.input_rules),
            "output_rules": _rules_json(policy.output_rules),
            "fail_mode": policy.fail_mode.value, "created_at": policy.created_at,
            "updated_at": policy.updated_at}


def _policy(row: Row) -> Policy:
    m = row._mapping
    return Policy(policy_id=m["policy_id"], tenant_id=m["tenant_id"], name=m["name"],
                  input_rules=_rules(m["input_rules"]), output_rules=_rules(m["output_rules"]),
                  fail_mode=FailMode(m["fail_mode"]), created_at=m["created_at"],
                  updated_at=m["updated_at"])
