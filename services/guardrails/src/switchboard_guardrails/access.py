"""Who may manage which policies: the caller's key, checked by auth through common's admission
(verdicts cached briefly, refusals not). Admin keys manage every tenant's policies, tenant admin
keys their own tenant's; any other key may read its own tenant's."""

from __future__ import annotations

from switchboard_common.admission import Admission
from switchboard_common.errors import NotFound, PermissionDenied

from switchboard_guardrails.domain import Caller, Policy

TENANT_ADMIN = "tenant_admin"


class Access:
    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    async def caller(self, secret: str) -> Caller:
        """The key's owner; MissingApiKey without one, auth's refusal for a bad one."""
        return await self._admission.admit(secret)

    async def manager(self, secret: str) -> Caller:
        """The caller when its key may change policies (admin, or tenant admin for its own
        tenant: see `may_manage`); 403 otherwise."""
        caller = await self.caller(secret)
        if not (caller.is_admin or caller.role == TENANT_ADMIN):
            raise PermissionDenied("Managing guardrail policies needs an admin or tenant admin key.",
                                   code="admin_key_required")
        return caller

    @staticmethod
    def may_manage(caller: Caller, tenant_id: str) -> None:
        if not caller.is_admin and tenant_id != caller.tenant_id:
            raise PermissionDenied("A tenant admin key manages only its own tenant's policies.",
                                   param="tenant_id", code="permission_denied")

    @staticmethod
    def tenant_scope(caller: Caller, requested_tenant_id: str) -> str:
        """The tenant filter a caller may list with: admins any (empty: all), others their own."""
        if caller.is_admin:
            return requested_tenant_id
        if requested_tenant_id and requested_tenant_id != caller.tenant_id:
            raise PermissionDenied("This key may only read its own tenant's policies.",
                                   param="tenant_id", code="permission_denied")
        return caller.tenant_id

    @staticmethod
    def visible(caller: Caller, policy: Policy | None, policy_id: str) -> Policy:
        """The policy when the caller may see it; another tenant's is as absent as a missing one."""
        if policy is None or not (caller.is_admin or policy.tenant_id == caller.tenant_id):
            raise NotFound(f"No guardrail policy '{policy_id}'.", param="policy_id",
                           code="policy_not_found")
        return policy
