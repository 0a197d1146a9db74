"""Budget slices: reservation arithmetic, top-ups, renewals, 402s, giving back, and the cost
shown to callers. Billing is a fake of its client (billing's own arithmetic is tested there)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from switchboard.billing.v1 import billing_pb2
from switchboard_common.errors import InsufficientQuota, ServiceUnavailable

from switchboard_router.budgets import Budgets, Estimate, Slice
from switchboard_router.costs import with_cost
from switchboard_router.domain import Caller, Deployment, Endpoint, ParsedRequest, Target, Tokens
from switchboard_router.prices import Prices, Rates, usd
from switchboard_router.usage import Exchange, Outcome

DEP = Deployment(route="m", name="p/m", provider="p", model="up", weight=1, timeout_seconds=1,
                 read_timeout_seconds=1, connect_timeout_seconds=1)
TARGET = Target(DEP, "gpt-4o")
CALLER = Caller(key_id="k1", tenant_id="t1")
# $2.50 in and $10 out per million tokens: 100 tokens in and 100 out cost 1,250 micro-dollars.
RATES = Rates(input=2_500_000, output=10_000_000, cached_input=1_250_000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeBillingClient:
    """LeaseBudget over one dollar limit for key k1 (grants at most what is left), prices fixed."""

    def __init__(self, limit: int | None, ttl: float = 60.0, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.limit = limit
        self.granted = 0
        self.ttl = ttl
        self.lease_calls: list[int] = []
        self.returned: list[tuple[str, int]] = []
        self.price_calls = 0
        self.down = False
        self.lease_id = "lease-1"

    async def lease(self, key_id, tenant_id, replica_id, micros_usd, tokens):
        if self.down:
            raise ServiceUnavailable("billing is unavailable (unavailable)")
        self.lease_calls.append(micros_usd)
        reply = billing_pb2.LeaseBudgetResponse(no_token_limit=True)
        reply.expires_at.FromNanoseconds(int((self.clock.now + self.ttl) * 1e9))
        if self.limit is None:
            reply.no_dollar_limit = True
            return reply
        grant = max(0, min(micros_usd, self.limit - self.granted))
        self.granted += grant
        reply.lease_id, reply.granted_micros_usd = self.lease_id, grant
        reply.remaining_micros_usd = self.limit - self.granted
        return reply

    async def give_back(self, lease_id, micros_usd, tokens):
        self.returned.append((lease_id, micros_usd))
        self.granted -= micros_usd
        return billing_pb2.ReturnBudgetResponse(returned_micros_usd=micros_usd)

    async def prices(self, queries):
        if self.down:
            raise ServiceUnavailable("billing is unavailable (unavailable)")
        self.price_calls += 1
        return [billing_pb2.Price(query=q, input_per_mtok_micros_usd=RATES.input,
                                  output_per_mtok_micros_usd=RATES.output,
                                  cached_input_per_mtok_micros_usd=RATES.cached_input)
                for q in queries]


class FixedTokenizer:
    """Every prompt counts 100 tokens: the estimate's arithmetic is what is under test here."""

    def count_prompt(self, endpoint, model, body) -> int:
        return 100


def _budgets(billing: FakeBillingClient, **kw) -> Budgets:
    clock = billing.clock  # the same seconds as wall and monotonic time: leases expire on it
    prices = Prices(billing, ttl_seconds=300, clock=clock)  # type: ignore[arg-type]
    options = {"default_max_tokens": 1000, "lease_requests": 4, "renew_before_seconds": 10, **kw}
    return Budgets(billing, prices, FixedTokenizer(), clock=clock,  # type: ignore[arg-type]
                   wall_clock=clock, **options)


def _request(max_tokens: int | None = 100, n: int = 1) -> ParsedRequest:
    return ParsedRequest(endpoint=Endpoint.CHAT, model="m", max_tokens=max_tokens, n=n,
                         body={"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def _ended(reservation, tokens: Tokens, outcome: Outcome = Outcome.SUCCESS,
           answered: bool = True) -> Exchange:
    ex = Exchange(request_id="r", endpoint=Endpoint.CHAT, started=0.0, model="m", target=TARGET)
    ex.reserve(reservation)
    ex.outcome, ex.answered = outcome, answered
    return ex


# --- the arithmetic ---------------------------------------------------------------------------


def test_rates_round_half_up_and_estimates_round_up():
    rates = Rates(input=1_500_000, output=1)
    assert rates.cost(Tokens(1, 0)) == 2  # 1.5 micro-dollars, half up as billing rounds
    assert rates.cost(Tokens(0, 1)) == 0
    assert rates.ceiling(Tokens(0, 1)) == 1  # an estimate never falls short
    # Cached and cache-write tokens are parts of the prompt at their own rates, clamped to it.
    cached = Rates(input=2_000_000, cached_input=1_000_000, cache_write=3_000_000)
    assert cached.cost(Tokens(10, 0, cached=4, cache_write=2)) == 4 * 2 + 4 + 6
    assert cached.cost(Tokens(10, 0, cached=50)) == 10  # never more cached than prompt


def test_highest_rates_cover_every_deployment():
    a, b = Rates(input=1, output=9), Rates(input=5, output=2, known=False)
    assert Rates.highest([a, b]) == Rates(input=5, output=9, known=False)


def test_a_slice_reserves_settles_and_never_spends_more_than_granted():
    s = Slice(lease_id="l", expires_at=1e9, limits_usd=True, granted_usd=1000)
    first = s.reserve(Estimate(400, 0), RATES)
    second = s.reserve(Estimate(400, 0), RATES)
    assert s.room() == Estimate(200, 0)
    assert not s.fits(Estimate(400, 0))
    first.settle(100, 50)  # cost less than its estimate: the rest comes back into the room
    assert s.room() == Estimate(500, 0) and s.spent_usd == 100
    first.settle(100, 50)  # settled once, whatever calls it again
    assert s.room() == Estimate(500, 0)
    second.settle(700, 50)  # cost more than its estimate: taken from the room after it
    assert s.room() == Estimate(200, 0)
    assert s.unused() == Estimate(200, 0)
    s.reserve(Estimate(200, 0), RATES).settle(900, 0)
    assert s.room().micros_usd < 0 and s.unused() == Estimate(0, 0)  # a debt, never given back


def test_shortfall_asks_for_several_requests_beyond_the_room():
    s = Slice(lease_id="l", expires_at=1e9, limits_usd=True, granted_usd=300)
    assert s.shortfall(Estimate(100, 7), 4, 8) == Estimate(100, 0)  # 4 x 100 less 300; no token limit
    assert s.shortfall(Estimate(500, 0), 1, 8) == Estimate(200, 0)  # at least what this one lacks
    s.pool_usd = 80_000  # a large budget: an eighth of what it has left
    assert s.shortfall(Estimate(100, 7), 4, 8) == Estimate(10_000 - 300, 0)


# --- Budgets against billing's client ----------------------------------------------------------


async def test_requests_within_a_budget_make_one_lease_call_then_402():
    billing = FakeBillingClient(limit=5 * 1250)
    budgets = _budgets(billing)
    held = []
    for _ in range(5):
        held.append(await budgets.reserve(CALLER, _request(), [TARGET]))
    # A slice of 4 requests, then another 4 asked for the 5th, of which billing had room for one.
    assert billing.lease_calls == [4 * 1250, 4 * 1250] and billing.granted == 5 * 1250
    with pytest.raises(InsufficientQuota) as refused:
        await budgets.reserve(CALLER, _request(), [TARGET])
    assert refused.value.http_status == 402 and refused.value.code == "budget_exceeded"
    assert refused.value.error_type == "insufficient_quota"
    # One ends having cost less: the next request fits again, with no further call to billing.
    budgets.settle(_ended(held[0], Tokens(100, 10)), Tokens(100, 10))
    calls = len(billing.lease_calls)
    assert await budgets.reserve(CALLER, _request(max_tokens=10), [TARGET]) is not None
    assert len(billing.lease_calls) == calls
    assert billing.price_calls == 1  # the price is asked once per deployment


async def test_a_large_budget_is_leased_in_large_slices():
    billing = FakeBillingClient(limit=10**9)
    budgets = _budgets(billing)
    for _ in range(200):
        await budgets.reserve(CALLER, _request(), [TARGET])
    # The first look asks for 4 requests; then an eighth of what is left lasts the other 196.
    assert billing.lease_calls == [4 * 1250, (10**9 - 5000) // 8]  # the 4 held no room left


async def test_concurrent_requests_never_reserve_more_than_the_limit():
    billing = FakeBillingClient(limit=10 * 1250)
    budgets = _budgets(billing)
    results = await asyncio.gather(*(budgets.reserve(CALLER, _request(), [TARGET])
                                     for _ in range(50)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 10
    assert all(isinstance(r, InsufficientQuota) for r in results if isinstance(r, BaseException))
    assert billing.granted == 10 * 1250


async def test_a_call_refused_before_an_answer_costs_nothing_and_frees_its_reservation():
    billing = FakeBillingClient(limit=1250)
    budgets = _budgets(billing)
    held = await budgets.reserve(CALLER, _request(), [TARGET])
    budgets.settle(_ended(held, Tokens(0, 0), Outcome.ERROR, answered=False), Tokens(0, 0))
    assert held.slice.room().micros_usd == 1250
    assert await budgets.reserve(CALLER, _request(), [TARGET]) is not None


async def test_an_answer_that_failed_after_the_provider_worked_is_spent():
    """An output guardrail blocked it, or its stream was cut midway: the provider billed it."""
    billing = FakeBillingClient(limit=1250)
    budgets = _budgets(billing)
    held = await budgets.reserve(CALLER, _request(), [TARGET])
    budgets.settle(_ended(held, Tokens(100, 100), Outcome.ERROR), Tokens(100, 100))
    assert RATES.cost(Tokens(100, 100)) == 1250  # the whole budget
    assert held.slice.room().micros_usd == 0
    with pytest.raises(InsufficientQuota):
        await budgets.reserve(CALLER, _request(), [TARGET])


async def test_a_key_without_budget_costs_one_lookup_until_its_lease_expires():
    billing = FakeBillingClient(limit=None)
    clock = billing.clock
    budgets = _budgets(billing)
    for _ in range(3):
        assert await budgets.reserve(CALLER, _request(), [TARGET]) is None
    assert len(billing.lease_calls) == 1
    clock.now += 61
    assert await budgets.reserve(CALLER, _request(), [TARGET]) is None
    assert billing.lease_calls[-1] == 0  # asked again, for nothing: a budget set meanwhile applies


async def test_billing_down_fails_only_keys_it_must_ask_about():
    billing = FakeBillingClient(limit=None)
    clock = billing.clock
    budgets = _budgets(billing)
    await budgets.reserve(CALLER, _request(), [TARGET])
    billing.down = True
    clock.now += 61
    # Known to have no budget: stays without one while billing is away.
    assert await budgets.reserve(CALLER, _request(), [TARGET]) is None
    # Never seen: its budget cannot be known, so it is a 503, not a free pass.
    with pytest.raises(ServiceUnavailable):
        await budgets.reserve(Caller(key_id="k2", tenant_id="t1"), _request(), [TARGET])
    with pytest.raises(ServiceUnavailable):  # and again: the placeholder is no verdict
        await budgets.reserve(Caller(key_id="k2", tenant_id="t1"), _request(), [TARGET])


async def test_a_slice_is_renewed_before_it_expires_and_replaced_when_reclaimed():
    billing = FakeBillingClient(limit=100 * 1250)
    clock = billing.clock
    budgets = _budgets(billing)
    first = await budgets.reserve(CALLER, _request(), [TARGET])
    clock.now += 55  # within renew_before of the 60 s lease: renewed (and topped up) first
    again = await budgets.reserve(CALLER, _request(), [TARGET])
    assert len(billing.lease_calls) == 2 and again.slice is first.slice
    billing.lease_id = "lease-2"  # billing reclaimed the old lease and made a new one
    clock.now += 60
    third = await budgets.reserve(CALLER, _request(), [TARGET])
    assert third.slice is not first.slice and third.slice.lease_id == "lease-2"
    assert third.slice.granted_usd == billing.lease_calls[-1]  # only what the new lease granted
    budgets.settle(_ended(first, Tokens(100, 100)), Tokens(100, 100))  # settles its own slice
    assert first.slice.reserved_usd == 1250 and third.slice.reserved_usd == 1250


async def test_unused_slices_go_back_at_close():
    billing = FakeBillingClient(limit=10 * 1250)
    budgets = _budgets(billing)
    held = await budgets.reserve(CALLER, _request(), [TARGET])
    budgets.settle(_ended(held, Tokens(100, 100)), Tokens(100, 100))
    await budgets.close()
    assert billing.returned == [("lease-1", 3 * 1250)]


async def test_the_estimate_is_prompt_plus_every_output_token_asked_for():
    budgets = _budgets(FakeBillingClient(limit=None))
    assert await budgets.estimate(_request(max_tokens=100, n=2), TARGET, RATES) == \
        Estimate(250 + 2 * 1000, 300)  # 2 x 100 output tokens at $10 per million
    assert await budgets.estimate(_request(max_tokens=None), TARGET, RATES) == \
        Estimate(250 + 10_000, 1100)  # the configured default when none is named
    embed = ParsedRequest(endpoint=Endpoint.EMBEDDINGS, model="m", body={"input": "x"})
    assert await budgets.estimate(embed, TARGET, RATES) == Estimate(250, 100)


# --- the cost shown to callers -----------------------------------------------------------------


def test_usd_prints_all_six_decimals():
    assert usd(0) == "0.000000" and usd(1250) == "0.001250" and usd(12_345_678) == "12.345678"


def test_the_cost_goes_into_the_usage_chunk_only():
    content = b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    out = with_cost(content + usage + b"data: [DONE]\n\n", 1250, True)
    first, second, done = out.split(b"\n\n")[:3]
    assert first + b"\n\n" == content  # left byte for byte
    assert orjson.loads(second[len(b"data: "):])["usage"] == {
        "prompt_tokens": 3, "completion_tokens": 2, "cost_usd": 0.00125}
    assert done == b"data: [DONE]"
    unknown = with_cost(usage, 0, False)
    assert orjson.loads(unknown[len(b"data: "):])["usage"]["price_unknown"] is True


async def test_prices_are_cached_for_their_ttl_and_bounded_in_number(monkeypatch):
    from switchboard_router import prices as prices_module

    monkeypatch.setattr(prices_module, "MAX_CACHED", 3)
    billing = FakeBillingClient(limit=None)
    prices = Prices(billing, ttl_seconds=300, clock=billing.clock)  # type: ignore[arg-type]
    keys = [(f"openai/model-{i}", "openai", "d", f"model-{i}") for i in range(10)]
    for key in keys:  # a wildcard route: any name a client sends
        assert await prices.rates([key]) == [RATES]
    assert len(prices._rates) == 3 and billing.price_calls == 10
    assert prices.cached(keys[-1]) == RATES
    billing.clock.now += 301
    assert prices.cached(keys[-1]) is None


async def test_budget_slices_of_keys_gone_quiet_are_forgotten_once_their_lease_expired():
    billing = FakeBillingClient(limit=1_000_000, ttl=30)
    budgets = _budgets(billing)
    for i in range(5):
        held = await budgets.reserve(Caller(key_id=f"k{i}", tenant_id="t"), _request(), [TARGET])
        budgets.settle(_ended(held, Tokens(100, 100)), Tokens(100, 100))
    assert len(budgets) == 5
    billing.clock.now += 61  # their leases (30 s) expired, and a sweep is due
    assert await budgets.reserve(CALLER, _request(), [TARGET]) is not None
    assert len(budgets) == 1  # only the key just seen


# --- the dearest deployment a request may reach --------------------------------------------------


class DearFallbackBilling(FakeBillingClient):
    """RATES for every deployment but `dear`, which costs four times as much."""

    async def prices(self, queries):
        self.price_calls += 1
        return [billing_pb2.Price(query=q, input_per_mtok_micros_usd=RATES.input * k,
                                  output_per_mtok_micros_usd=RATES.output * k)
                for q in queries for k in [4 if q.deployment == "dear" else 1]]


def _fallback_routes():
    from switchboard_router import config
    from switchboard_router.codecs.openai import OpenAICodec
    from switchboard_router.providers.remote import RemoteProvider
    from switchboard_router.routing import Routes, TimeoutDefaults

    raw = {"providers": {"p": {"type": "openai", "base_url": "http://p/v1", "api_key": "k"}},
           "models": [
               {"name": "m", "deployments": [{"provider": "p", "name": "cheap"}],
                "context_window_fallbacks": ["big"]},
               {"name": "big", "deployments": [{"provider": "p", "name": "dear"}]}]}
    cfg = config.parse(raw, {})
    return Routes(cfg, {"p": RemoteProvider(OpenAICodec(None), None, None)},
                  TimeoutDefaults(total_seconds=1, read_seconds=1, connect_seconds=1), created=0)


async def test_the_estimate_is_at_the_dearest_fallback_the_key_may_use():
    """A request planned on `cheap` may end on its error fallback `dear`: reserved at dear's
    rates (4 x 1,250), so concurrent requests that all fall back cannot overshoot the budget;
    a key that may not use the fallback never reaches it and reserves at cheap's."""
    routes = _fallback_routes()
    plan = routes.plan("m", Endpoint.CHAT)
    billing = DearFallbackBilling(limit=10**6)
    budgets = _budgets(billing, reach=routes.reachable)
    held = await budgets.reserve(CALLER, _request(), plan)
    assert [t.deployment.name for t in plan] == ["cheap"]
    assert held.held == Estimate(4 * 1250, 200) and held.rates.input == 4 * RATES.input
    restricted = Caller(key_id="k1", tenant_id="t1", allowed_models=frozenset({"m"}))
    assert (await budgets.reserve(restricted, _request(), plan)).held == Estimate(1250, 200)
    assert billing.price_calls == 1  # both deployments priced at once, then cached
    # Settled at the real cost of the deployment that answered (its rates are cached now).
    ex = _ended(held, Tokens(100, 100))
    ex.target = routes.plan("big", Endpoint.CHAT)[0]
    budgets.settle(ex, Tokens(100, 100))
    assert held.slice.spent_usd == 4 * 1250
    # Without routing's reach (as before), only the plan is priced: the fallback is missed.
    alone = _budgets(DearFallbackBilling(limit=10**6))
    assert (await alone.reserve(CALLER, _request(), plan)).held == Estimate(1250, 200)


async def test_a_requests_rates_are_read_once_and_handed_on():
    """The reservation prices the request's deployments; the cost shown, the settlement and the
    metrics take the answering one's from there, with no further read of the price cache."""
    from switchboard_router.costs import Costs
    from switchboard_router.metrics import cached_cost

    billing = FakeBillingClient(limit=10**6)
    budgets = _budgets(billing)
    prices = budgets._prices
    reads = []
    read = prices.cached
    prices.cached = lambda key: reads.append(key) or read(key)  # type: ignore[method-assign]
    ex = _ended(await budgets.reserve(CALLER, _request(), [TARGET]), Tokens(100, 100))
    assert len(reads) == 1  # the reservation's estimate
    assert await Costs(prices).rates(ex) == RATES
    budgets.settle(ex, Tokens(100, 100))
    assert cached_cost(prices)(ex, Tokens(100, 100)) == 1250
    assert len(reads) == 1 and ex.reservation.slice.spent_usd == 1250
    # A key without a budget reserves nothing: the cost reads the rates once, for the rest too.
    free = Exchange(request_id="r2", endpoint=Endpoint.CHAT, started=0.0, model="m", target=TARGET)
    assert await Costs(prices).rates(free) == RATES
    assert cached_cost(prices)(free, Tokens(100, 100)) == 1250 and len(reads) == 2
