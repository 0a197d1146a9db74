"""Checks on the limits an admin sets for a key or a tenant: positive and not absurd."""

from __future__ import annotations

from collections.abc import Mapping

from switchboard_common.errors import InvalidRequest

from switchboard_auth.domain import LIMIT_NAMES, RateLimits

# Far above any real deployment's needs; past these a value is a typo.
MAXIMA = {"requests_per_minute": 10_000_000, "tokens_per_minute": 2_000_000_000,
          "tokens_per_day": 10_000_000_000_000, "max_parallel_requests": 100_000}


def check_limits(limits: RateLimits, prefix: str) -> RateLimits:
    """Each limit set is 1..its maximum (there, leaving it out means no limit)."""
    for name in LIMIT_NAMES:
        value = getattr(limits, name)
        if value is not None:
            _check_one(name, value, prefix, removable=False)
    return limits


def check_limit_patch(patch: Mapping[str, int | None], prefix: str) -> Mapping[str, int | None]:
    """In an update, 0 (given as None here) removes a limit; otherwise as in check_limits."""
    for name, value in patch.items():
        if value is not None:
            _check_one(name, value, prefix, removable=True)
    return patch


def _check_one(name: str, value: int, prefix: str, *, removable: bool) -> None:
    low = 0 if removable else 1
    if not low <= value <= MAXIMA[name]:
        hint = "0 removes the limit" if removable else "leave it out for no limit"
        raise InvalidRequest(f"{prefix}.{name} must be between 1 and {MAXIMA[name]} ({hint}).",
                             param=f"{prefix}.{name}", code="invalid_value")
