"""Tenant administration: the groups keys belong to."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from switchboard_common.errors import Conflict, InvalidRequest

from switchboard_auth.domain import DEFAULT_TENANT, Tenant, utc_now
from switchboard_auth.hashing import generate_id
from switchboard_auth.repository import Repository

_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class TenantAdmin:
    def __init__(self, repo: Repository, clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._clock = clock

    async def ensure_default(self) -> None:
        await self._repo.ensure_tenant(Tenant(tenant_id=DEFAULT_TENANT, name="Default tenant",
                                              created_at=self._clock()))

    async def create(self, name: str, tenant_id: str) -> Tenant:
        if tenant_id and not _TENANT_ID.fullmatch(tenant_id):
            raise InvalidRequest("tenant_id must be 1-64 letters, digits, '_', '.' or '-', "
                                 "starting with a letter or digit.", param="tenant_id")
        if len(name) > 200:
            raise InvalidRequest("name is longer than 200 characters.", param="name")
        tenant_id = tenant_id or generate_id("tenant")
        tenant = Tenant(tenant_id=tenant_id, name=name or tenant_id, created_at=self._clock())
        if not await self._repo.insert_tenant(tenant):
            raise Conflict(f"Tenant '{tenant.tenant_id}' exists already.", param="tenant_id",
                           code="tenant_exists")
        return tenant

    async def list(self) -> list[Tenant]:
        return await self._repo.list_tenants()
