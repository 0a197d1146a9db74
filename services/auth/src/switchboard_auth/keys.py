"""Key administration: create, read, list, update, rotate and revoke keys, announcing each change.

Every use case takes the caller (a Principal): what it may not see is a 404, as if absent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from switchboard_common.errors import ApiError, InvalidRequest, NotSupportedYet

from switchboard_auth import key_format
from switchboard_auth.access import Principal, check_user_id, key_not_found, unknown_tenant
from switchboard_auth.domain import (DEFAULT_TENANT, MASTER_KEY_ID, UNSET, CreatedKey, Key,
                                     KeyChange, KeyFilter, KeyPage, KeyPatch, NewKey, Role,
                                     utc_now)
from switchboard_auth.hashing import KeyHasher
from switchboard_auth.key_budgets import BudgetFields, KeyBudgets
from switchboard_auth.limits import check_limit_patch, check_limits
from switchboard_common.models import pattern_problem
from switchboard_auth.policy_ids import check_policy_ids
from switchboard_auth.repository import Repository, limit_values

Notify = Callable[[Key, KeyChange], Awaitable[None]]

_MAX_NAME = 200
_MAX_MODELS = 256
_MAX_METADATA = 64
_MAX_METADATA_CHARS = 1000
_MAX_EXPIRES_IN_SECONDS = 100 * 366 * 86400  # a century; far larger overflows the datetime
MAX_GRACE_SECONDS = 30 * 86400


class KeyAdmin:
    def __init__(self, repo: Repository, hasher: KeyHasher, notify: Notify,
                 clock: Callable[[], datetime] = utc_now, budgets: KeyBudgets | None = None) -> None:
        self._budgets = budgets  # billing's SetBudget: where a key's budget fields are enforced
        self._repo = repo
        self._hasher = hasher
        self._notify = notify
        self._clock = clock

    async def create(self, caller: Principal, new: NewKey) -> CreatedKey:
        caller.require_manager()
        now = self._clock()
        tenant_id = new.tenant_id or caller.key.tenant_id or DEFAULT_TENANT
        if caller.tenant_scope and tenant_id != caller.tenant_scope:
            raise unknown_tenant(tenant_id)
        if tenant_id != DEFAULT_TENANT and not await self._repo.tenant_exists(tenant_id):
            raise unknown_tenant(tenant_id)
        budget = BudgetFields(total=new.max_budget_micros_usd, daily=new.daily_budget_micros_usd,
                              monthly=new.monthly_budget_micros_usd)
        self._check_budget(budget)
        policy_ids = check_policy_ids(new.guardrail_policy_ids)
        role = _role(new.role or Role.MEMBER.value)
        caller.may_grant(role)
        user_id = _owner(caller, new.user_id)
        _check_name(new.name)
        _check_models(new.allowed_models)
        _check_metadata(new.metadata)
        secret = key_format.generate_secret()
        key = Key(
            key_id=key_format.generate_id("key"), name=new.name, tenant_id=tenant_id,
            user_id=user_id, role=role, key_prefix=key_format.display_prefix(secret),
            key_hint=key_format.hint(secret), allowed_models=tuple(new.allowed_models),
            rate_limits=check_limits(new.rate_limits, "rate_limits"),
            guardrail_policy_ids=policy_ids, created_at=now, updated_at=now,
            expires_at=_expiry(new.expires_at, new.expires_in_seconds, now),
            metadata=dict(new.metadata), cache_responses=new.cache_responses,
        )
        await self._repo.insert_key(key, self._hasher.hash(secret))
        if budget.given():
            await self._budget_or_revoke(caller, key, budget)
        key = await self._repo.get_key(key.key_id) or key  # with its tenant's defaults
        await self._notify(key, KeyChange.CREATED)
        return CreatedKey(key=key, secret=secret)

    def _check_budget(self, budget: BudgetFields) -> None:
        for field, value in (("max_budget_micros_usd", budget.total),
                             ("daily_budget_micros_usd", budget.daily),
                             ("monthly_budget_micros_usd", budget.monthly)):
            if value is not None and self._budgets is None:
                raise NotSupportedYet(field, "this auth has no billing to hold budgets "
                                             "(SWITCHBOARD_AUTH_BILLING_TARGET)")
            if value is not None and value < 0:
                raise InvalidRequest(f"{field} cannot be negative.", param=field,
                                     code="invalid_value")

    async def _budget_or_revoke(self, caller: Principal, key: Key, budget: BudgetFields) -> None:
        """Billing holds the new key's budget, or the key goes: a key never exists with a budget
        nobody enforces. The key is revoked before anyone saw its secret."""
        assert self._budgets is not None, "checked before the key was made"
        try:
            await self._budgets.create(caller.secret, key.key_id, budget)
        except ApiError:
            await self._repo.revoke_key(key.key_id, self._clock())
            raise

    async def get(self, caller: Principal, key_id: str) -> Key:
        caller.require_manager()
        key = await self._repo.get_key(key_id) if key_id else None
        if key is None or not caller.sees_key(key):
            raise key_not_found(key_id)
        return key

    async def list(self, caller: Principal, where: KeyFilter,
                   after: tuple[datetime, str] | None, page_size: int) -> KeyPage:
        caller.require_manager()
        if caller.acting_user:
            if where.user_id and where.user_id != caller.acting_user:
                raise InvalidRequest("user_id differs from the X-User-ID header.",
                                     param="user_id")
            where = replace(where, user_id=caller.acting_user)
        if caller.tenant_scope:
            if where.tenant_id and where.tenant_id != caller.tenant_scope:
                return KeyPage(keys=[], next_cursor=None)  # as for a tenant without keys
            where = replace(where, tenant_id=caller.tenant_scope)
        check_user_id(where.user_id)
        # One row more than asked tells whether another page exists. A tenant admin's page
        # leaves out admin keys, so it may hold fewer keys than asked.
        rows = await self._repo.list_keys(where, after, page_size + 1)
        page = rows[:page_size]
        last = page[-1] if len(rows) > page_size else None
        visible = [k for k in page if caller.sees_key(k)]
        return KeyPage(keys=visible, next_cursor=(last.created_at, last.key_id)
                       if last is not None and last.created_at is not None else None)

    async def update(self, caller: Principal, key_id: str, patch: KeyPatch) -> Key:
        budget = BudgetFields(*(None if v is UNSET else v for v in (
            patch.max_budget_micros_usd, patch.daily_budget_micros_usd,
            patch.monthly_budget_micros_usd)))
        self._check_budget(budget)
        current = await self._mutable(caller, key_id)
        now = self._clock()
        values = self._changes(caller, current, patch, now)
        values["updated_at"] = now
        if budget.given():
            # Billing after every check and before the key changes: when billing refuses,
            # nothing of the patch applies.
            assert self._budgets is not None, "checked above"
            await self._budgets.update(caller.secret, key_id, budget)
        key = await self._repo.update_key(key_id, values)
        if key is None:  # deleted with its tenant between the check and the update
            raise key_not_found(key_id)
        await self._notify(key, KeyChange.UPDATED)
        return key

    def _changes(self, caller: Principal, current: Key, patch: KeyPatch,
                 now: datetime) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if patch.name is not UNSET:
            _check_name(patch.name)
            values["name"] = patch.name
        if patch.user_id is not UNSET:
            values["user_id"] = check_user_id(patch.user_id)
        if patch.role is not UNSET:
            role = _role(patch.role)
            caller.may_grant(role)
            values["role"] = role.value
        if patch.allowed_models is not UNSET:
            _check_models(patch.allowed_models)
            values["allowed_models"] = list(patch.allowed_models)
        if patch.rate_limits:
            limits = current.rate_limits.patched(check_limit_patch(patch.rate_limits,
                                                                   "rate_limits"))
            values.update(limit_values(limits))
        if patch.expires_at is not UNSET or patch.expires_in_seconds is not UNSET:
            if patch.expires_at is None:  # the epoch: no expiry
                values["expires_at"] = None
            else:
                values["expires_at"] = _expiry(
                    None if patch.expires_at is UNSET else patch.expires_at,
                    None if patch.expires_in_seconds is UNSET else patch.expires_in_seconds, now)
        if patch.guardrail_policy_ids is not UNSET:
            values["guardrail_policy_ids"] = list(check_policy_ids(patch.guardrail_policy_ids))
        if patch.cache_responses is not UNSET:
            values["cache_responses"] = patch.cache_responses
        if patch.metadata:
            merged = {**current.metadata, **patch.metadata}
            merged = {k: v for k, v in merged.items() if v != ""}
            _check_metadata(merged)
            values["metadata"] = merged
        return values

    async def revoke(self, caller: Principal, key_id: str) -> Key:
        await self._mutable(caller, key_id)
        key, changed = await self._repo.revoke_key(key_id, self._clock())
        if key is None:
            raise key_not_found(key_id)
        if changed:  # revoking again changes nothing and announces nothing
            await self._notify(key, KeyChange.REVOKED)
        return key

    async def rotate(self, caller: Principal, key_id: str,
                     grace_seconds: int | None) -> CreatedKey:
        grace = grace_seconds or 0
        if not 0 <= grace <= MAX_GRACE_SECONDS:
            raise InvalidRequest(f"grace_period_seconds must be between 0 and "
                                 f"{MAX_GRACE_SECONDS} (30 days).", param="grace_period_seconds")
        current = await self._mutable(caller, key_id)
        if current.revoked_at is not None:
            raise InvalidRequest("A revoked key cannot be rotated; create a new one.",
                                 param="key_id", code="key_revoked")
        now = self._clock()
        secret = key_format.generate_secret()
        display = (key_format.display_prefix(secret), key_format.hint(secret))
        key = await self._repo.rotate_secret(key_id, self._hasher.hash(secret), display, now,
                                             now + timedelta(seconds=grace))
        if key is None:
            raise key_not_found(key_id)
        await self._notify(key, KeyChange.ROTATED)
        return CreatedKey(key=key, secret=secret)

    async def _mutable(self, caller: Principal, key_id: str) -> Key:
        key = await self.get(caller, key_id)
        if key_id == MASTER_KEY_ID:
            raise InvalidRequest("The master key is set by SWITCHBOARD_MASTER_KEY; change it "
                                 "there.", param="key_id", code="master_key_immutable")
        return key


def _owner(caller: Principal, user_id: str) -> str:
    if caller.acting_user and user_id and user_id != caller.acting_user:
        raise InvalidRequest("user_id differs from the X-User-ID header.", param="user_id")
    return check_user_id(user_id or caller.acting_user)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(f"Invalid role '{value[:50]}': use admin, tenant_admin or member.",
                             param="role", code="invalid_value") from None


def _expiry(expires_at: datetime | None, expires_in_seconds: int | None,
            now: datetime) -> datetime | None:
    if expires_at is not None and expires_in_seconds is not None:
        raise InvalidRequest("Set expires_at or expires_in_seconds, not both.",
                             param="expires_in_seconds")
    if expires_in_seconds is not None:
        if expires_in_seconds <= 0:
            raise InvalidRequest("expires_in_seconds must be positive.", param="expires_in_seconds")
        if expires_in_seconds > _MAX_EXPIRES_IN_SECONDS:
            raise InvalidRequest(f"expires_in_seconds must be at most {_MAX_EXPIRES_IN_SECONDS} "
                                 "(a century).", param="expires_in_seconds")
        return now + timedelta(seconds=expires_in_seconds)
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("expires_at must be in the future.", param="expires_at")
    return expires_at


def _check_name(name: str) -> None:
    if len(name) > _MAX_NAME:
        raise InvalidRequest(f"name is longer than {_MAX_NAME} characters.", param="name")


def _check_models(models: tuple[str, ...]) -> None:
    if len(models) > _MAX_MODELS:
        raise InvalidRequest(f"allowed_models holds more than {_MAX_MODELS} entries.",
                             param="allowed_models")
    for index, model in enumerate(models):
        if problem := pattern_problem(model):
            raise InvalidRequest(f"allowed_models[{index}] '{model[:_MAX_NAME]}' is invalid: "
                                 f"{problem}. Use a model name or a prefix ending in '*'.",
                                 param=f"allowed_models[{index}]", code="invalid_value")


def _check_metadata(metadata: Mapping[str, str]) -> None:
    if len(metadata) > _MAX_METADATA:
        raise InvalidRequest(f"metadata holds more than {_MAX_METADATA} entries.", param="metadata")
    for name, value in metadata.items():
        if len(name) > _MAX_NAME or len(value) > _MAX_METADATA_CHARS:
            raise InvalidRequest(f"metadata entries take names up to {_MAX_NAME} and values up "
                                 f"to {_MAX_METADATA_CHARS} characters.",
                                 param=f"metadata.{name[:_MAX_NAME]}")
