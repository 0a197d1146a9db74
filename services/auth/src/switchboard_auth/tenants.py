"""Tenant administration: the groups keys belong to, and the default limits of their keys."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from switchboard_common.errors import Conflict, InvalidRequest

from switchboard_auth.access import Principal, tenant_not_found
from switchboard_auth.domain import (DEFAULT_TENANT, NO_LIMITS, UNSET, KeyChange, RateLimits,
                                     Tenant, TenantPage, TenantPatch, utc_now)
from switchboard_auth.key_format import generate_id
from switchboard_auth.limits import check_limit_patch, check_limits
from switchboard_auth.policy_ids import check_policy_ids
from switchboard_auth.repository import Repository, TenantDeletion, limit_values

_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAX_NAME = 200

NotifyTenant = Callable[[str, KeyChange], Awaitable[None]]


class TenantAdmin:
    def __init__(self, repo: Repository, notify: NotifyTenant | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._notify = notify
        self._clock = clock

    async def ensure_default(self) -> None:
        await self._repo.ensure_tenant(Tenant(tenant_id=DEFAULT_TENANT, name="Default tenant",
                                              created_at=self._clock()))

    async def create(self, caller: Principal, name: str, tenant_id: str,
                     defaults: RateLimits = NO_LIMITS,
                     guardrail_policy_ids: tuple[str, ...] = (),
                     cache_responses: bool = False) -> Tenant:
        caller.require_admin()
        if tenant_id and not _TENANT_ID.fullmatch(tenant_id):
            raise InvalidRequest("tenant_id must be 1-64 letters, digits, '_', '.' or '-', "
                                 "starting with a letter or digit.", param="tenant_id")
        _check_name(name)
        tenant_id = tenant_id or generate_id("tenant")
        now = self._clock()
        tenant = Tenant(tenant_id=tenant_id, name=name or tenant_id, created_at=now,
                        updated_at=now, guardrail_policy_ids=check_policy_ids(guardrail_policy_ids),
                        default_rate_limits=check_limits(defaults, "default_rate_limits"),
                        cache_responses=cache_responses)
        if not await self._repo.insert_tenant(tenant):
            raise Conflict(f"Tenant '{tenant.tenant_id}' exists already.", param="tenant_id",
                           code="tenant_exists")
        return tenant

    async def get(self, caller: Principal, tenant_id: str) -> Tenant:
        caller.require_manager()
        tenant = await self._repo.get_tenant(tenant_id) if tenant_id else None
        if tenant is None or not caller.sees_tenant(tenant):
            raise tenant_not_found(tenant_id)
        return tenant

    async def list(self, caller: Principal, after: tuple[datetime, str] | None,
                   page_size: int) -> TenantPage:
        caller.require_manager()
        rows = await self._repo.list_tenants(caller.tenant_scope, after, page_size + 1)
        page = rows[:page_size]
        last = page[-1] if len(rows) > page_size else None
        return TenantPage(tenants=page, next_cursor=(last.created_at, last.tenant_id)
                          if last is not None and last.created_at is not None else None)

    async def update(self, caller: Principal, tenant_id: str, patch: TenantPatch) -> Tenant:
        current = await self.get(caller, tenant_id)
        caller.require_admin()
        values: dict[str, Any] = {"updated_at": self._clock()}
        if patch.name is not UNSET:
            _check_name(patch.name)
            values["name"] = patch.name or tenant_id
        if patch.default_rate_limits:
            limits = current.default_rate_limits.patched(
                check_limit_patch(patch.default_rate_limits, "default_rate_limits"))
            values.update(limit_values(limits))
        if patch.guardrail_policy_ids is not UNSET:
            values["guardrail_policy_ids"] = list(check_policy_ids(patch.guardrail_policy_ids))
        if patch.cache_responses is not UNSET:
            values["cache_responses"] = patch.cache_responses
        tenant = await self._repo.update_tenant(tenant_id, values)
        if tenant is None:
            raise tenant_not_found(tenant_id)
        # Routers cache their keys' verdicts, which carry all three: drop them.
        if (tenant.default_rate_limits != current.default_rate_limits
                or tenant.guardrail_policy_ids != current.guardrail_policy_ids
                or tenant.cache_responses != current.cache_responses):
            await self._announce(tenant_id, KeyChange.TENANT_UPDATED)
        return tenant

    async def delete(self, caller: Principal, tenant_id: str) -> Tenant:
        tenant = await self.get(caller, tenant_id)
        caller.require_admin()
        if tenant_id == DEFAULT_TENANT:
            raise InvalidRequest("The default tenant cannot be deleted.", param="tenant_id",
                                 code="default_tenant")
        outcome, live = await self._repo.delete_tenant_if_empty(tenant_id)
        if outcome is TenantDeletion.NOT_FOUND:
            raise tenant_not_found(tenant_id)
        if outcome is TenantDeletion.NOT_EMPTY:
            raise Conflict(f"Tenant '{tenant_id}' still has {live} unrevoked key(s); revoke "
                           "them first.", param="tenant_id", code="tenant_not_empty")
        await self._announce(tenant_id, KeyChange.TENANT_DELETED)
        return tenant

    async def _announce(self, tenant_id: str, change: KeyChange) -> None:
        if self._notify is not None:
            await self._notify(tenant_id, change)


def _check_name(name: str) -> None:
    if len(name) > _MAX_NAME:
        raise InvalidRequest(f"name is longer than {_MAX_NAME} characters.", param="name")
