"""Retries of a routing pass: backoff or the provider's Retry-After, the deadline, the budget."""

from __future__ import annotations

import time

import pytest
import stamina
from switchboard_common.errors import InvalidRequest, RateLimited, UpstreamError

from switchboard_router.retries import Retrier, RetryBudget, RetryPolicy


@pytest.fixture(autouse=True)
def no_waiting():
    with stamina.set_testing(True, attempts=100, cap=True):  # the policy's attempts, no sleeping
        yield


def _passes(*outcomes):
    """A one_pass that fails or answers in turn, recording the plans it was given."""
    seen: list[object] = []
    queue = list(outcomes)

    async def one_pass(targets):
        seen.append(targets)
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return one_pass, seen


async def _replan():
    return ["replanned"]


async def test_retryable_failures_are_retried_on_a_new_plan():
    one_pass, seen = _passes(UpstreamError("boom"), RateLimited("slow down", retry_after=1), "ok")
    retrier = Retrier(RetryPolicy(attempts=2))
    assert await retrier.run(["first"], _replan, one_pass, time.perf_counter() + 30) == "ok"
    assert seen == [["first"], ["replanned"], ["replanned"]]


async def test_the_attempt_cap_and_non_retryable_errors_end_it():
    one_pass, seen = _passes(UpstreamError("a"), UpstreamError("b"), UpstreamError("c"), "ok")
    with pytest.raises(UpstreamError, match="c"):
        await Retrier(RetryPolicy(attempts=2)).run(["x"], _replan, one_pass, time.perf_counter() + 30)
    one_pass, seen = _passes(InvalidRequest("bad"), "ok")
    with pytest.raises(InvalidRequest):
        await Retrier(RetryPolicy(attempts=2)).run(["x"], _replan, one_pass, time.perf_counter() + 30)
    assert len(seen) == 1


async def test_a_retry_after_beyond_the_deadline_or_the_cap_is_not_waited_for():
    one_pass, seen = _passes(RateLimited("wait", retry_after=5), "ok")
    with pytest.raises(RateLimited):
        await Retrier(RetryPolicy(attempts=2)).run(["x"], _replan, one_pass, time.perf_counter() + 2)
    one_pass, seen = _passes(RateLimited("wait", retry_after=60), "ok")
    with pytest.raises(RateLimited):
        await Retrier(RetryPolicy(attempts=2, max_retry_after_seconds=10)).run(
            ["x"], _replan, one_pass, time.perf_counter() + 300)
    assert len(seen) == 1


async def test_nothing_left_to_plan_ends_with_the_error_that_came_last():
    async def nothing():
        raise UpstreamError("every deployment is open")

    one_pass, _ = _passes(RateLimited("the real one"), "ok")
    with pytest.raises(RateLimited, match="the real one"):
        await Retrier(RetryPolicy(attempts=2)).run(["x"], nothing, one_pass, time.perf_counter() + 30)


async def test_the_budget_keeps_retries_a_share_of_the_traffic():
    retrier = Retrier(RetryPolicy(attempts=1, budget_ratio=0.1, min_retries=2))
    retried = 0
    for _ in range(100):
        one_pass, seen = _passes(UpstreamError("down"), UpstreamError("still down"))
        with pytest.raises(UpstreamError):
            await retrier.run(["x"], _replan, one_pass, time.perf_counter() + 30)
        retried += len(seen) - 1
    assert 2 <= retried <= 2 + 100 * 0.1 + 1  # the reserve, then a tenth of the requests


def test_budget_bucket():
    budget = RetryBudget(ratio=0.5, reserve=1)
    assert budget.withdraw() and not budget.withdraw()
    budget.deposit()
    budget.deposit()
    assert budget.withdraw()
