"""Policy administration: create, list, read, change and delete, each rule checked against the
check registry before it is stored, so a stored policy is always one this service can enforce."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from switchboard_common.errors import Conflict, InvalidRequest

from switchboard_guardrails import checks
from switchboard_guardrails.access import Access
from switchboard_guardrails.checks.base import Toolkit
from switchboard_guardrails.domain import Direction, NewPolicy, Policy, PolicyPatch, Rule
from switchboard_guardrails.repository import NameTaken, PolicyRepository

_MAX_NAME = 200
_MAX_RULES = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_policy_id() -> str:
    return f"pol_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class PolicyPage:
    policies: list[Policy]
    next_cursor: tuple[datetime, str] | None


class PolicyAdmin:
    def __init__(self, repo: PolicyRepository, access: Access, toolkit: Toolkit, *,
                 on_change: Callable[[str], None] = lambda policy_id: None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._access = access
        self._toolkit = toolkit
        self._on_change = on_change  # drops this replica's compiled copy at once
        self._clock = clock

    async def create(self, key: str, new: NewPolicy) -> Policy:
        caller = await self._access.manager(key)
        tenant_id = new.tenant_id or caller.tenant_id
        self._access.may_manage(caller, tenant_id)
        _check_name(new.name)
        self._check_rules(new.input_rules, Direction.INPUT)
        self._check_rules(new.output_rules, Direction.OUTPUT)
        now = self._clock()
        policy = Policy(policy_id=new_policy_id(), tenant_id=tenant_id,
                        name=new.name, input_rules=new.input_rules,
                        output_rules=new.output_rules, fail_mode=new.fail_mode, created_at=now,
                        updated_at=now)
        try:
            await self._repo.insert(policy)
        except NameTaken:
            raise _name_taken(policy) from None
        return policy

    async def list(self, key: str, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> PolicyPage:
        caller = await self._access.caller(key)
        scope = self._access.tenant_scope(caller, tenant_id)
        found = await self._repo.list(scope, after, limit + 1)
        more = len(found) > limit
        page = found[:limit]
        cursor = (page[-1].created_at, page[-1].policy_id) if more and page else None
        return PolicyPage(page, cursor)

    async def get(self, key: str, policy_id: str) -> Policy:
        caller = await self._access.caller(key)
        return self._access.visible(caller, await self._repo.get(policy_id), policy_id)

    async def update(self, key: str, policy_id: str, patch: PolicyPatch) -> Policy:
        caller = await self._access.manager(key)
        current = self._access.visible(caller, await self._repo.get(policy_id), policy_id)
        if patch.name is not None:
            _check_name(patch.name)
        if patch.input_rules is not None:
            self._check_rules(patch.input_rules, Direction.INPUT)
        if patch.output_rules is not None:
            self._check_rules(patch.output_rules, Direction.OUTPUT)
        changed = replace(
            current, updated_at=self._clock(),
            name=current.name if patch.name is None else patch.name,
            input_rules=current.input_rules if patch.input_rules is None else patch.input_rules,
            output_rules=current.output_rules if patch.output_rules is None else patch.output_rules,
            fail_mode=current.fail_mode if patch.fail_mode is None else patch.fail_mode)
        try:
            stored = await self._repo.replace(changed)
        except NameTaken:
            raise _name_taken(changed) from None
        self._on_change(policy_id)
        return self._access.visible(caller, stored, policy_id)

    async def delete(self, key: str, policy_id: str) -> None:
        caller = await self._access.manager(key)
        self._access.visible(caller, await self._repo.get(policy_id), policy_id)
        await self._repo.delete(policy_id)
        self._on_change(policy_id)

    def _check_rules(self, rules: tuple[Rule, ...], direction: Direction) -> None:
        field = f"{direction.value}_rules"
        if len(rules) > _MAX_RULES:
            raise InvalidRequest(f"{field} holds more than {_MAX_RULES} rules.", param=field)
        for index, rule in enumerate(rules):
            checks.validate(rule, f"{field}[{index}]", self._toolkit)


def _check_name(name: str) -> None:
    if not name.strip():
        raise InvalidRequest("A policy needs a name.", param="name", code="missing_required_parameter")
    if len(name) > _MAX_NAME:
        raise InvalidRequest(f"name is longer than {_MAX_NAME} characters.", param="name")


def _name_taken(policy: Policy) -> Conflict:
    return Conflict(f"Tenant '{policy.tenant_id}' has a policy named '{policy.name}' already.",
                    param="name", code="policy_name_taken")
