"""Who is calling: an admitted key, as auth's Authorize describes it. Plain data, no I/O, so
the router's and billing's domains can hold it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A key's effective limits (its own, else its tenant's defaults); None: no limit of that kind."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    max_parallel_requests: int | None = None

    def __bool__(self) -> bool:
        return not (self.requests_per_minute is None and self.tokens_per_minute is None
                    and self.tokens_per_day is None and self.max_parallel_requests is None)


NO_LIMITS = RateLimits()


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    tenant_id: str
    is_admin: bool = False
    allowed_models: frozenset[str] = frozenset()  # empty: every model
    guardrail_policy_ids: tuple[str, ...] = ()
    role: str = ""  # "admin", "tenant_admin" or "member" (auth's verdict); "" from older auths
    user_id: str = ""  # the key's owner, "" when none was named
    rate_limits: RateLimits = NO_LIMITS
    # The router's response cache answers this key's requests without x-switchboard-cache: on.
    cache_responses: bool = False
