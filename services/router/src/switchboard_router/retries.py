"""Retries of a whole routing pass (every healthy deployment once) with exponential backoff and
jitter (stamina), honouring the provider's Retry-After, bounded by the request's deadline and by a
retry budget, so that retries cannot multiply an outage.

Only failures of the provider are retried (429, 5xx, timeouts, connection errors), and only before
the client received any byte: a pass ends at a stream's first bytes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import stamina
from switchboard_common.errors import ApiError, RateLimited, UpstreamError, UpstreamTimeout

from switchboard_router.config_schema import RetriesConfig
from switchboard_router.domain import Target

T = TypeVar("T")
RETRYABLE = (RateLimited, UpstreamError, UpstreamTimeout)
# Less than this left of the deadline after the wait: no further pass is worth starting.
_LAST_CHANCE = 0.05


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 2  # passes after the first
    initial_seconds: float = 0.1
    max_seconds: float = 5.0
    jitter_seconds: float = 0.1
    max_retry_after_seconds: float = 10.0
    # Retries may add this share of the requests (plus `min_retries` in reserve): a token bucket
    # that every request fills by `budget_ratio` and every retry drains by one.
    budget_ratio: float = 0.2
    min_retries: int = 10


class RetryBudget:
    """Finagle's retry budget, as a token bucket: under an outage, retries stay a share of the
    traffic instead of multiplying it."""

    __slots__ = ("_ratio", "_tokens", "_cap")

    def __init__(self, ratio: float, reserve: int) -> None:
        self._ratio = ratio
        self._cap = float(max(reserve, 1)) + 100 * ratio
        self._tokens = float(reserve)

    def deposit(self) -> None:
        self._tokens = min(self._cap, self._tokens + self._ratio)

    def withdraw(self) -> bool:
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    @property
    def tokens(self) -> float:
        return self._tokens


class Retrier:
    @classmethod
    def from_config(cls, c: RetriesConfig) -> Retrier:
        return cls(RetryPolicy(attempts=c.attempts, initial_seconds=c.initial_backoff_seconds,
                               max_seconds=c.max_backoff_seconds, jitter_seconds=c.jitter_seconds,
                               max_retry_after_seconds=c.max_retry_after_seconds,
                               budget_ratio=c.budget_ratio, min_retries=c.budget_min_retries))

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.budget = RetryBudget(policy.budget_ratio, policy.min_retries)

    async def run(self, first: Sequence[Target], replan: Callable[[], Awaitable[Sequence[Target]]],
                  one_pass: Callable[[Sequence[Target]], Awaitable[T]], deadline: float) -> T:
        """one_pass over `first`; while it fails retryably and the budget and deadline allow,
        waits (backoff, or the Retry-After the provider asked for) and runs it over a new plan
        (breakers and cooldowns may have changed it)."""
        self.budget.deposit()
        # The first pass runs bare: nearly every request ends in it, and stamina's context per
        # request costs more than the pass's own work. Only its failure enters the retry loop.
        try:
            return await one_pass(first)
        except RETRYABLE as exc:
            if self.policy.attempts == 0:
                raise
            first_error: ApiError = exc
        last: list[ApiError] = [first_error]

        def worth_retrying(exc: Exception) -> bool | float:
            if not isinstance(exc, RETRYABLE):
                return False
            wait = _asked_wait(exc)
            if wait is not None and wait > self.policy.max_retry_after_seconds:
                return False
            left = deadline - time.perf_counter()
            if left - (wait or self.policy.initial_seconds) < _LAST_CHANCE or not self.budget.withdraw():
                return False
            return wait if wait else True  # 0 or none asked: stamina's backoff

        left = max(deadline - time.perf_counter(), _LAST_CHANCE)
        try:
            async for attempt in stamina.retry_context(
                    on=worth_retrying, attempts=self.policy.attempts + 1, timeout=left,
                    wait_initial=self.policy.initial_seconds, wait_max=self.policy.max_seconds,
                    wait_jitter=self.policy.jitter_seconds):
                with attempt:
                    if attempt.num == 1:  # the bare pass above: stamina judges its error
                        raise first_error
                    targets = await _replan(replan, last[0])
                    try:
                        return await one_pass(targets)
                    except ApiError as exc:
                        last[:] = [exc]
                        raise
        except _Exhausted as stop:
            raise stop.error from None
        raise AssertionError("stamina raises the last error")  # pragma: no cover


class _Exhausted(Exception):
    """No deployment is left to retry on: ends the retries with the error that came last."""

    def __init__(self, error: ApiError) -> None:
        self.error = error


async def _replan(replan: Callable[[], Awaitable[Sequence[Target]]],
                  last: ApiError) -> Sequence[Target]:
    try:
        return await replan()
    except ApiError:
        # Every deployment is open or cooling now: the client hears what failed, not a 503.
        raise _Exhausted(last) from None


def _asked_wait(exc: ApiError) -> float | None:
    """The provider's Retry-After (seconds, or retry-after-ms), if it named one."""
    return float(exc.retry_after) if exc.retry_after is not None else None
