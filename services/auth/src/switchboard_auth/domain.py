"""Auth's domain: keys, tenants, roles and limits, and the rules that hold for them; no gRPC, no SQL."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime

DEFAULT_TENANT = "default"  # exists in every deployment; keys without a tenant belong to it
MASTER_KEY_ID = "master"  # the admin key configured by SWITCHBOARD_MASTER_KEY


class Role(str, enum.Enum):
    """What a key may do besides calling models (which every valid key may)."""

    ADMIN = "admin"  # manages every tenant and key
    TENANT_ADMIN = "tenant_admin"  # manages its own tenant's keys
    MEMBER = "member"  # calls models and reads its own usage


@dataclass(frozen=True)
class RateLimits:
    """None: no limit of that kind."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    max_parallel_requests: int | None = None

    def over(self, defaults: RateLimits) -> RateLimits:
        """These limits, each one not set taken from `defaults` (a tenant's)."""
        return RateLimits(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None
                             else getattr(defaults, f.name) for f in fields(self)})

    def patched(self, patch: Mapping[str, int | None]) -> RateLimits:
        return replace(self, **patch)


LIMIT_NAMES = tuple(f.name for f in fields(RateLimits))
NO_LIMITS = RateLimits()


@dataclass(frozen=True)
class Key:
    key_id: str
    name: str
    tenant_id: str
    key_prefix: str
    key_hint: str = ""
    user_id: str = ""
    role: Role = Role.MEMBER
    allowed_models: tuple[str, ...] = ()  # empty: every model
    rate_limits: RateLimits = RateLimits()  # the key's own
    tenant_limits: RateLimits = RateLimits()  # its tenant's defaults, read with it
    max_budget_micros_usd: int | None = None
    guardrail_policy_ids: tuple[str, ...] = ()  # the key's own
    tenant_guardrail_policy_ids: tuple[str, ...] = ()  # its tenant's, read with it
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    cache_responses: bool | None = None  # the key's own; None: as its tenant says
    tenant_cache_responses: bool = False  # its tenant's, read with it

    @property
    def effective_cache_responses(self) -> bool:
        """Whether the router's response cache answers this key's requests by default."""
        return self.tenant_cache_responses if self.cache_responses is None else self.cache_responses

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def effective_limits(self) -> RateLimits:
        return self.rate_limits.over(self.tenant_limits)

    @property
    def effective_policy_ids(self) -> tuple[str, ...]:
        """The tenant's policies, then the key's: a key's policy adds to its tenant's."""
        return tuple(dict.fromkeys((*self.tenant_guardrail_policy_ids, *self.guardrail_policy_ids)))

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    guardrail_policy_ids: tuple[str, ...] = ()
    default_rate_limits: RateLimits = RateLimits()
    cache_responses: bool = False


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET  # a patch field left alone (None means "clear" where clearing is allowed)


@dataclass(frozen=True)
class NewKey:
    """What an admin asks for in CreateKey, before validation."""

    name: str = ""
    tenant_id: str = ""
    user_id: str = ""
    role: str = ""
    allowed_models: tuple[str, ...] = ()
    rate_limits: RateLimits = RateLimits()
    max_budget_micros_usd: int | None = None
    daily_budget_micros_usd: int | None = None
    monthly_budget_micros_usd: int | None = None
    guardrail_policy_ids: tuple[str, ...] = ()
    expires_at: datetime | None = None
    expires_in_seconds: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    cache_responses: bool | None = None


@dataclass(frozen=True)
class KeyPatch:
    """What UpdateKey changes; UNSET fields are kept as they are."""

    name: str | _Unset = UNSET
    user_id: str | _Unset = UNSET
    role: str | _Unset = UNSET
    allowed_models: tuple[str, ...] | _Unset = UNSET
    rate_limits: Mapping[str, int | None] = field(default_factory=dict)  # None removes a limit
    max_budget_micros_usd: int | _Unset = UNSET
    daily_budget_micros_usd: int | _Unset = UNSET
    monthly_budget_micros_usd: int | _Unset = UNSET
    guardrail_policy_ids: tuple[str, ...] | _Unset = UNSET  # () removes the key's own
    expires_at: datetime | _Unset | None = UNSET
    expires_in_seconds: int | _Unset = UNSET
    metadata: Mapping[str, str] = field(default_factory=dict)  # "" removes an entry
    cache_responses: bool | _Unset | None = UNSET  # None: as its tenant says


@dataclass(frozen=True)
class TenantPatch:
    name: str | _Unset = UNSET
    guardrail_policy_ids: tuple[str, ...] | _Unset = UNSET  # () removes them
    default_rate_limits: Mapping[str, int | None] = field(default_factory=dict)
    cache_responses: bool | _Unset = UNSET


@dataclass(frozen=True)
class KeyFilter:
    tenant_id: str = ""
    user_id: str = ""
    name_prefix: str = ""
    revoked: bool | None = None  # None: both


@dataclass(frozen=True)
class CreatedKey:
    key: Key
    secret: str  # shown once to the admin who created it, never stored


@dataclass(frozen=True)
class KeyPage:
    keys: list[Key]
    next_cursor: tuple[datetime, str] | None


@dataclass(frozen=True)
class TenantPage:
    tenants: list[Tenant]
    next_cursor: tuple[datetime, str] | None


@dataclass(frozen=True)
class Verdict:
    """Authorize's answer: the key, when this secret stops working, and how long a router may
    reuse this answer."""

    key: Key
    expires_at: datetime | None
    cache_ttl_seconds: int


class KeyChange(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    REVOKED = "revoked"
    DELETED = "deleted"
    ROTATED = "rotated"
    TENANT_UPDATED = "tenant_updated"
    TENANT_DELETED = "tenant_deleted"


def utc_now() -> datetime:
    return datetime.now(UTC)
