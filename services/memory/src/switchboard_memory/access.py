"""Who may touch which tenant's memory: the caller's key, checked by auth through common's
admission (verdicts cached briefly, refusals not). Any key manages its own tenant's sessions and
collections; an admin key may name another tenant."""

from __future__ import annotations

from dataclasses import replace

from switchboard_common.admission import Admission
from switchboard_common.errors import PermissionDenied

from switchboard_memory.domain import Caller


class Access:
    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    async def caller(self, secret: str) -> Caller:
        """The key's owner; MissingApiKey without one, auth's refusal for a bad one."""
        return await self._admission.admit(secret)

    async def tenant(self, secret: str, requested_tenant_id: str) -> Caller:
        """The caller, with tenant_id the one its call acts on: its own unless an admin key
        names another."""
        caller = await self.caller(secret)
        if not requested_tenant_id or requested_tenant_id == caller.tenant_id:
            return caller
        if not caller.is_admin:
            raise PermissionDenied("This key may only manage its own tenant's memory; use an "
                                   "admin key to name another tenant.", param="tenant_id",
                                   code="permission_denied")
        return replace(caller, tenant_id=requested_tenant_id)
