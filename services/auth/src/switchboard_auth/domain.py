"""Auth's domain: keys, tenants and the rules that hold for them; no gRPC, no SQL."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_TENANT = "default"  # exists in every deployment; keys without a tenant belong to it
MASTER_KEY_ID = "master"  # the admin key configured by SWITCHBOARD_MASTER_KEY


@dataclass(frozen=True)
class RateLimits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True)
class Key:
    key_id: str
    name: str
    tenant_id: str
    key_prefix: str
    allowed_models: tuple[str, ...] = ()  # empty: every model
    rate_limits: RateLimits = RateLimits()
    max_budget_micros_usd: int | None = None
    guardrail_policy_ids: tuple[str, ...] = ()
    is_admin: bool = False
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    created_at: datetime | None = None
    guardrail_policy_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewKey:
    """What an admin asks for in CreateKey, before validation."""

    name: str = ""
    tenant_id: str = ""
    allowed_models: tuple[str, ...] = ()
    rate_limits: RateLimits = RateLimits()
    max_budget_micros_usd: int | None = None
    guardrail_policy_ids: tuple[str, ...] = ()
    expires_at: datetime | None = None
    expires_in_seconds: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET  # a patch field left alone (None means "clear" where clearing is allowed)


@dataclass(frozen=True)
class KeyPatch:
    """What UpdateKey changes; UNSET fields are kept as they are."""

    name: str | _Unset = UNSET
    allowed_models: tuple[str, ...] | _Unset = UNSET
    requests_per_minute: int | None | _Unset = UNSET
    tokens_per_minute: int | None | _Unset = UNSET
    max_budget_micros_usd: int | _Unset = UNSET
    expires_at: datetime | None | _Unset = UNSET


@dataclass(frozen=True)
class CreatedKey:
    key: Key
    secret: str  # shown once to the admin who created it, never stored


@dataclass(frozen=True)
class KeyPage:
    keys: list[Key]
    next_cursor: tuple[datetime, str] | None


@dataclass(frozen=True)
class Verdict:
    """Authorize's answer: the key, and how long a router may reuse this answer."""

    key: Key
    cache_ttl_seconds: int


class KeyChange(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    REVOKED = "revoked"


def utc_now() -> datetime:
    return datetime.now(UTC)


def model_allowed(patterns: Iterable[str], model: str) -> bool:
    """True when `model` is empty (the key alone is checked), no patterns are set, or one matches.

    A pattern is an exact model name or a prefix ending in `*` ("gpt-4o*", or "*" for every model).
    """
    if not model:
        return True
    patterns = tuple(patterns)
    if not patterns:
        return True
    for pattern in patterns:
        if pattern.endswith("*"):
            if model.startswith(pattern[:-1]):
                return True
        elif pattern == model:
            return True
    return False
