"""Who may read and change what, in one place: the caller's key is checked by auth through
common's admission (verdicts cached briefly, refusals not), and its role decides the scope.

The master key and "admin" keys see and change everything; a "tenant_admin" key sees its
tenant's usage and budgets and sets its tenant's keys' budgets (auth confirms the key is in the
tenant); any other key sees only its own usage and budget and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from switchboard_common.admission import Admission
from switchboard_common.errors import NotFound, PermissionDenied

from switchboard_billing.domain import Caller, UsageFilter

ADMIN, TENANT_ADMIN, MEMBER = "admin", "tenant_admin", "member"
# (the caller's presented key, a key id) -> that key's tenant, as auth shows it to this caller;
# None when the caller may not see the key.
KeyTenant = Callable[[str, str], Awaitable[str | None]]


def role_of(caller: Caller) -> str:
    """The caller's role as auth's verdict says it (an auth without roles: the admin flag)."""
    return caller.role or (ADMIN if caller.is_admin else MEMBER)


def _denied(what: str, param: str) -> PermissionDenied:
    return PermissionDenied(what, param=param, code="permission_denied")


class Access:
    def __init__(self, admission: Admission, key_tenant: KeyTenant | None = None) -> None:
        self._admission = admission
        self._key_tenant = key_tenant

    async def caller(self, secret: str) -> Caller:
        """The key's owner; MissingApiKey without one, auth's refusal for a bad one."""
        return await self._admission.admit(secret)

    @staticmethod
    def usage_scope(caller: Caller, wanted: UsageFilter) -> UsageFilter:
        """The filter narrowed to what the caller may read; asking for more is a 403."""
        role = role_of(caller)
        if role == ADMIN:
            return wanted
        if role == TENANT_ADMIN:
            if wanted.tenant_id and wanted.tenant_id != caller.tenant_id:
                raise _denied("This key may only read its own tenant's usage.", "tenant_id")
            return replace(wanted, tenant_id=caller.tenant_id)
        if wanted.key_id and wanted.key_id != caller.key_id:
            raise _denied("This key may only read its own usage; use an admin key to read "
                          "another key's.", "key_id")
        return replace(wanted, key_id=caller.key_id)

    async def check_budget(self, secret: str, caller: Caller, scope: str, scope_id: str, *,
                           change: bool) -> None:
        """May the caller read (change=False) or set this key's or tenant's budget?"""
        role = role_of(caller)
        if role == ADMIN:
            return
        param = "key_id" if scope == "key" else "tenant_id"
        if role == TENANT_ADMIN:
            if scope == "tenant":
                if scope_id != caller.tenant_id:
                    raise NotFound(f"No budget for tenant '{scope_id[:64]}'.", param=param)
                if change:
                    raise _denied("A tenant's own budget is set by an admin key.", param)
                return
            if scope_id == caller.key_id or await self._in_tenant(secret, scope_id, caller):
                return
            raise NotFound(f"No key '{scope_id[:64]}' in this tenant.", param=param)
        if change:
            raise _denied("This key may not set budgets; use an admin key.", param)
        if scope != "key" or scope_id != caller.key_id:
            raise _denied("This key may only read its own budget.", param)

    async def _in_tenant(self, secret: str, key_id: str, caller: Caller) -> bool:
        if self._key_tenant is None:
            return False
        return await self._key_tenant(secret, key_id) == caller.tenant_id
