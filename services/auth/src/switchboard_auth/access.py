"""Who may manage what: the master key and admin keys everything, a tenant_admin key its own
tenant's keys, a member key nothing. What a caller may not see answers exactly as what does not
exist (404), so no one learns another tenant's keys or tenants exist."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard_common.errors import InvalidRequest, NotFound, PermissionDenied

from switchboard_auth.domain import MASTER_KEY_ID, Key, Role, Tenant

MAX_USER_ID = 200


@dataclass(frozen=True)
class Principal:
    """The caller of an admin RPC: its key, and the user it acts for (AILB's X-User-ID)."""

    key: Key
    acting_user: str = ""
    # Sensitive: the key it presented, to act as itself towards billing (budgets); never logged.
    secret: str = field(default="", repr=False)

    @property
    def is_admin(self) -> bool:
        return self.key.role is Role.ADMIN

    @property
    def tenant_scope(self) -> str:
        """The one tenant this caller may manage; "" for every tenant."""
        return "" if self.is_admin else self.key.tenant_id

    def require_manager(self) -> None:
        if self.key.role not in (Role.ADMIN, Role.TENANT_ADMIN):
            raise PermissionDenied("admin key required", code="admin_key_required")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("admin key required", code="admin_key_required")

    def sees_key(self, key: Key) -> bool:
        if self.acting_user and key.user_id != self.acting_user:
            return False
        if self.is_admin:
            return True
        # A tenant admin sees its tenant's keys, but neither admin keys nor the master key.
        return (key.tenant_id == self.key.tenant_id and key.role is not Role.ADMIN
                and key.key_id != MASTER_KEY_ID)

    def sees_tenant(self, tenant: Tenant) -> bool:
        return self.is_admin or tenant.tenant_id == self.key.tenant_id

    def may_grant(self, role: Role) -> None:
        if role is Role.ADMIN and not self.is_admin:
            raise PermissionDenied("Only an admin key can make or change an admin key.",
                                   param="role", code="role_not_allowed")


def key_not_found(key_id: str) -> NotFound:
    return NotFound(f"No key '{key_id[:100]}'.", param="key_id", code="key_not_found")


def tenant_not_found(tenant_id: str) -> NotFound:
    return NotFound(f"No tenant '{tenant_id[:100]}'.", param="tenant_id", code="tenant_not_found")


def unknown_tenant(tenant_id: str) -> InvalidRequest:
    """A key's tenant_id naming no tenant the caller may use: bad input, a 400 naming the field
    (the same whether the tenant is missing or another's)."""
    return InvalidRequest(f"No tenant '{tenant_id[:100]}'.", param="tenant_id",
                          code="tenant_not_found")


def check_user_id(user_id: str, param: str = "user_id") -> str:
    if len(user_id) > MAX_USER_ID or not user_id.isprintable():
        raise InvalidRequest(f"{param} must be at most {MAX_USER_ID} printable characters.",
                             param=param)
    return user_id
