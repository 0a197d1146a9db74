"""Prices per deployment, from billing's BatchGetPrices, kept in memory: the router computes a
request's cost (for its budget reservation and the caller's `x-switchboard-cost-usd`) with the
same rates billing bills with, asking billing once per deployment and model every `ttl` seconds.

Rates are integer micro-dollars per million tokens (billing rounds them up), so tokens x rate is
micro-micro-dollars; a cost is rounded half up to a whole micro-dollar, as billing rounds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from switchboard.billing.v1 import billing_pb2
from switchboard_common.errors import ApiError

from switchboard_router.billing_client import BillingClient
from switchboard_router.domain import Target, Tokens

if TYPE_CHECKING:
    from switchboard_router.usage import Exchange

_log = structlog.get_logger("prices")
_MILLION = 1_000_000
PriceKey = tuple[str, str, str, str]  # model as asked, provider, deployment, upstream model
MAX_CACHED = 100_000  # price keys held; the least recently used beyond go


@dataclass(frozen=True, slots=True)
class Rates:
    """Micro-dollars per million tokens; `known` False: billing prices this at 0 and flags it."""

    input: int = 0
    output: int = 0
    cached_input: int = 0
    cache_write: int = 0
    known: bool = True

    def cost(self, tokens: Tokens) -> int:
        """Micro-dollars, rounded half up, as billing computes it (cache parts clamped)."""
        return (self._cost(tokens) + _MILLION // 2) // _MILLION

    def ceiling(self, tokens: Tokens) -> int:
        """Micro-dollars rounded up: a reservation never falls short of the cost."""
        return -(-self._cost(tokens) // _MILLION)

    def _cost(self, tokens: Tokens) -> int:
        cached = min(max(tokens.cached, 0), tokens.prompt)
        written = min(max(tokens.cache_write, 0), tokens.prompt - cached)
        uncached = tokens.prompt - cached - written
        return (uncached * self.input + cached * self.cached_input + written * self.cache_write
                + tokens.completion * self.output)

    @staticmethod
    def highest(rates: Sequence[Rates]) -> Rates:
        """The dearest of each rate: an estimate for a request that may fail over to any."""
        if len(rates) == 1:  # the common model with one deployment
            return rates[0]
        return Rates(input=max(r.input for r in rates), output=max(r.output for r in rates),
                     cached_input=max(r.cached_input for r in rates),
                     cache_write=max(r.cache_write for r in rates),
                     known=all(r.known for r in rates))


UNKNOWN = Rates(known=False)


def price_key(model: str, target: Target) -> PriceKey:
    return (model, target.deployment.provider, target.deployment.name, target.upstream_model)


def answering_rates(ex: Exchange, prices: Prices) -> Rates | None:
    """The rates of the deployment that answered, read once per request and kept on it (for
    the cost shown, the budget's settlement and the metrics): from what its budget reservation
    priced, else from the cache; None while not known here (billing not asked yet)."""
    if ex.rates is None and ex.target is not None:
        key = price_key(ex.model, ex.target)
        priced = ex.reservation.priced if ex.reservation is not None else None
        ex.rates = (priced.get(key) if priced else None) or prices.cached(key)
    return ex.rates


class Prices:
    def __init__(self, billing: BillingClient, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._billing = billing
        self._ttl = ttl_seconds
        self._clock = clock
        # Least recently used first, each with its expiry (monotonic). Bounded: a wildcard route
        # (openai/*) takes any model name a client sends. A plain OrderedDict, not cachetools'
        # TTLCache: a read is 2,969 instructions here, 16,560 there (callgrind, README).
        self._rates: OrderedDict[PriceKey, tuple[Rates, float]] = OrderedDict()

    def cached(self, key: PriceKey) -> Rates | None:
        """The rates if known and fresh; no I/O."""
        hit = self._rates.get(key)
        if hit is None:
            return None
        if hit[1] <= self._clock():
            del self._rates[key]
            return None
        self._rates.move_to_end(key)
        return hit[0]

    def _keep(self, fetched: dict[PriceKey, Rates]) -> None:
        expires = self._clock() + self._ttl
        for key, rates in fetched.items():
            self._rates[key] = (rates, expires)
            self._rates.move_to_end(key)
        while len(self._rates) > MAX_CACHED:
            self._rates.popitem(last=False)

    async def rates(self, keys: Sequence[PriceKey]) -> list[Rates]:
        """Rates for every key, asking billing (one call) for those not known or stale.
        Raises ServiceUnavailable when billing cannot answer."""
        found = [self.cached(k) for k in keys]
        missing = [k for k, r in zip(keys, found, strict=True) if r is None]
        fetched: dict[PriceKey, Rates] = {}
        if missing:
            replies = await self._billing.prices([
                billing_pb2.PriceQuery(model=m, provider=p, deployment=d, upstream_model=u)
                for m, p, d, u in missing])
            fetched = {key: _rates(price) for key, price in zip(missing, replies, strict=True)}
            self._keep(fetched)
        return [r if r is not None else fetched[k] for k, r in zip(keys, found, strict=True)]

    async def rates_or_none(self, key: PriceKey) -> Rates | None:
        """For the cost shown to the caller: None (no header) when billing cannot answer."""
        hit = self.cached(key)
        if hit is not None:
            return hit
        try:
            return (await self.rates([key]))[0]
        except ApiError as exc:
            _log.warning("prices unavailable; the answer carries no cost", error=exc.code)
            return None


def _rates(price: billing_pb2.Price) -> Rates:
    if price.price_unknown:
        return UNKNOWN
    return Rates(input=price.input_per_mtok_micros_usd, output=price.output_per_mtok_micros_usd,
                 cached_input=price.cached_input_per_mtok_micros_usd,
                 cache_write=price.cache_write_per_mtok_micros_usd)


def usd(micros: int) -> str:
    """Micro-dollars as a dollar amount with all six decimals ("0.000125")."""
    sign = "-" if micros < 0 else ""
    whole, part = divmod(abs(micros), _MILLION)
    return f"{sign}{whole}.{part:06d}"
