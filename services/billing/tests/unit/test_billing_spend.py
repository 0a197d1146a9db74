"""Storing usage idempotently, spend aggregates and listing, and who may see what (real SQLite)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from switchboard_common.admission import Admission, VerdictCache
from switchboard_common.auth_client import Verdict
from switchboard_common.errors import InvalidRequest, PermissionDenied, Unauthenticated

from switchboard_billing.access import Access
from switchboard_billing.domain import Caller, SpendTotals, TimeWindow, UsageEntry, UsageFilter
from switchboard_billing.spend import SpendQueries

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def entry(i: int, **over) -> UsageEntry:
    base = UsageEntry(request_id=f"req-{i}", occurred_at=T0 + timedelta(minutes=i),
                      key_id="key_a" if i % 2 else "key_b", tenant_id="acme",
                      model="gpt-4o" if i % 3 else "claude", prompt_tokens=i, completion_tokens=2 * i,
                      total_tokens=3 * i, cost_micros_usd=100 * i,
                      provider="anthropic" if i % 4 == 0 else "openai",
                      outcome="error" if i % 5 == 0 else "success",
                      price_unknown=i % 7 == 0)  # a few with no known price
    return replace(base, **over)


def expected(entries) -> SpendTotals:
    return SpendTotals(
        requests=len(entries), prompt_tokens=sum(e.prompt_tokens for e in entries),
        completion_tokens=sum(e.completion_tokens for e in entries),
        total_tokens=sum(e.total_tokens for e in entries),
        cost_micros_usd=sum(e.cost_micros_usd for e in entries),
        errors=sum(e.outcome == "error" for e in entries),
        unpriced_requests=sum(e.price_unknown for e in entries))


async def test_insert_is_idempotent_by_request_id(repo):
    entries = [entry(i) for i in range(1, 11)]
    assert await repo.insert(entries[:6] + entries[:2]) == 6  # duplicates inside one batch
    assert await repo.insert(entries) == 4  # and across batches
    assert await repo.insert([replace(entries[0], prompt_tokens=999)]) == 0  # first one wins
    assert await repo.insert([]) == 0
    assert (await repo.spend(UsageFilter())).totals == expected(entries)


async def test_spend_totals_by_model_and_filters(repo):
    entries = [entry(i) for i in range(1, 31)]
    await repo.insert(entries)
    spend = await repo.spend(UsageFilter())
    assert spend.totals == expected(entries)
    assert dict(spend.by_model) == {
        m: expected([e for e in entries if e.model == m]) for m in ("claude", "gpt-4o")}
    assert spend.totals == sum((t for _, t in spend.by_model), SpendTotals())

    cases = {
        UsageFilter(key_id="key_a"): lambda e: e.key_id == "key_a",
        UsageFilter(tenant_id="other"): lambda e: False,
        UsageFilter(provider="anthropic"): lambda e: e.provider == "anthropic",
        UsageFilter(model="gpt-4o", provider="openai"):
            lambda e: (e.model, e.provider) == ("gpt-4o", "openai"),
        UsageFilter(model="claude"): lambda e: e.model == "claude",
        UsageFilter(start_time=T0 + timedelta(minutes=10), end_time=T0 + timedelta(minutes=20)):
            lambda e: T0 + timedelta(minutes=10) <= e.occurred_at < T0 + timedelta(minutes=20),
        UsageFilter(key_id="key_b", model="gpt-4o", start_time=T0 + timedelta(minutes=15)):
            lambda e: (e.key_id, e.model) == ("key_b", "gpt-4o")
            and e.occurred_at >= T0 + timedelta(minutes=15),
    }
    for f, keep in cases.items():
        assert (await repo.spend(f)).totals == expected([e for e in entries if keep(e)]), f


async def test_list_usage_newest_first_in_pages(repo):
    entries = [entry(i) for i in range(1, 12)]
    entries.append(entry(99, occurred_at=entries[4].occurred_at))  # a tie on time
    await repo.insert(entries)
    seen, cursor = [], None
    while True:
        rows = await repo.list_usage(UsageFilter(key_id="key_a"), cursor, 3)
        seen += rows
        if len(rows) < 3:
            break
        cursor = (rows[-1].occurred_at, rows[-1].request_id)
    want = sorted((e for e in entries if e.key_id == "key_a"),
                  key=lambda e: (e.occurred_at, e.request_id), reverse=True)
    assert [e.request_id for e in seen] == [e.request_id for e in want]
    assert seen[0] == want[0]  # every column round-trips, times stay aware UTC


class FakeAuth:
    def __init__(self) -> None:
        self.calls = 0
        self.callers = {"sk-admin": Caller("master", "default", True),
                        "sk-a": Caller("key_a", "acme", False)}

    async def __call__(self, secret: str, model: str = "") -> Verdict:
        self.calls += 1
        if secret not in self.callers:
            raise Unauthenticated("Incorrect API key provided.", code="invalid_api_key")
        return Verdict(self.callers[secret], ttl_seconds=60, expires_at=None)


def access(auth: FakeAuth, clock=None) -> Access:
    """Billing's Access as bootstrap builds it: verdicts for at most 30 s, refusals not kept."""
    return Access(Admission(auth, VerdictCache(100), default_ttl=30, max_ttl=30, refusal_ttl=0,
                            **({"clock": clock} if clock else {})))


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_access_caches_verdicts_briefly():
    auth, clock = FakeAuth(), Clock()
    checker = access(auth, clock)
    assert (await checker.caller("sk-a")).key_id == "key_a"
    await checker.caller("sk-a")
    assert auth.calls == 1
    clock.now += 31
    await checker.caller("sk-a")
    assert auth.calls == 2
    for _ in range(2):  # refusals are not cached
        with pytest.raises(Unauthenticated):
            await checker.caller("sk-nope")
    assert auth.calls == 4
    with pytest.raises(Unauthenticated) as err:
        await checker.caller("")
    assert err.value.code == "missing_api_key" and auth.calls == 4


async def test_non_admins_see_only_their_own_key(repo):
    entries = [entry(i) for i in range(1, 21)]
    await repo.insert(entries)
    queries = SpendQueries(access(FakeAuth()), repo)
    mine = expected([e for e in entries if e.key_id == "key_a"])
    assert (await queries.spend("sk-a", UsageFilter())).totals == mine
    assert (await queries.spend("sk-a", UsageFilter(key_id="key_a"))).totals == mine
    with pytest.raises(PermissionDenied) as err:
        await queries.spend("sk-a", UsageFilter(key_id="key_b"))
    assert err.value.param == "key_id"
    with pytest.raises(PermissionDenied):
        await queries.usage("sk-a", UsageFilter(key_id="key_b"), None, 10)
    mine_listed = (await queries.usage("sk-a", UsageFilter(), None, 100)).entries
    assert {e.key_id for e in mine_listed} == {"key_a"}
    assert (await queries.spend("sk-admin", UsageFilter())).totals == expected(entries)
    assert (await queries.spend("sk-admin", UsageFilter(key_id="key_b"))).totals == expected(
        [e for e in entries if e.key_id == "key_b"])
    with pytest.raises(InvalidRequest) as err:
        await queries.spend("sk-admin", UsageFilter(), TimeWindow(start_time=T0, end_time=T0))
    assert err.value.param == "end_time"


async def test_queries_resolve_periods_and_dates_with_their_clock(repo):
    # One row every five days from 2025-01-01, and one at the last second of 2025-01-16.
    entries = [entry(i, occurred_at=T0 + timedelta(days=5 * i)) for i in range(20)]
    entries.append(entry(99, occurred_at=datetime(2025, 1, 16, 23, 59, 59, tzinfo=UTC)))
    await repo.insert(entries)
    now = datetime(2025, 2, 15, 3, 0, tzinfo=UTC)
    queries = SpendQueries(access(FakeAuth()), repo, clock=lambda: now)

    async def spend(window: TimeWindow, wanted: UsageFilter = UsageFilter()) -> SpendTotals:
        return (await queries.spend("sk-admin", wanted, window)).totals

    def within(start: datetime, end: datetime, keep=lambda e: True) -> SpendTotals:
        return expected([e for e in entries if start <= e.occurred_at < end and keep(e)])

    feb, mar = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    assert await spend(TimeWindow(period="monthly")) == within(feb, mar)
    assert await spend(TimeWindow(period="monthly")) != SpendTotals()  # the case is not empty
    assert await spend(TimeWindow(period="daily")) == within(
        datetime(2025, 2, 15, tzinfo=UTC), datetime(2025, 2, 16, tzinfo=UTC))
    assert await spend(TimeWindow(period="total")) == expected(entries)
    jan6, jan17 = datetime(2025, 1, 6, tzinfo=UTC), datetime(2025, 1, 17, tzinfo=UTC)
    in_range = await spend(TimeWindow(start_date="2025-01-06", end_date="2025-01-16"))
    assert in_range == within(jan6, jan17) and in_range.requests == 4  # the end day included
    assert await spend(TimeWindow(period="monthly"), UsageFilter(provider="anthropic")) == within(
        feb, mar, lambda e: e.provider == "anthropic")

    page = await queries.usage("sk-admin", UsageFilter(provider="openai"), None, 100,
                               TimeWindow(start_date="2025-01-06", end_date="2025-01-16"))
    assert [e.request_id for e in page.entries] == [
        e.request_id for e in sorted(entries, key=lambda e: e.occurred_at, reverse=True)
        if jan6 <= e.occurred_at < jan17 and e.provider == "openai"]
    with pytest.raises(InvalidRequest) as err:
        await queries.usage("sk-admin", UsageFilter(), None, 10, TimeWindow(period="yearly"))
    assert err.value.param == "period"
