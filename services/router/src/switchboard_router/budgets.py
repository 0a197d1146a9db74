"""Budgets on the hot path: each request reserves its estimated cost from a slice of its key's and
tenant's budgets that billing leased to this replica, and settles the real cost when it ends; the
request makes no call to billing while the slice lasts.

A replica spends only what it was granted: a slice's room is what billing granted, minus the
real cost of the requests settled from it, minus the estimates of the requests in flight. So all
replicas together stay within every limit, overshot at most by what requests cost beyond their
estimate (the estimate is prompt tokens by tiktoken plus `max_tokens` or a default, at the
dearest rates of the deployments the request may go to, rounded up: its model's, and those of
the fallbacks and error fallbacks its key may use, so a dearer fallback overshoots nothing). A request that does not fit
asks billing for more (several at a time: `lease_requests` estimates); none to be had is a 402.

Keys whose budgets limit nothing (or that have none) are known as such until the lease's expiry,
so their requests cost one dictionary look-up here. A slice is renewed before its lease expires;
one billing reclaimed meanwhile comes back under a new id and starts from what billing grants.
What a slice holds unused goes back to billing when the router stops.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeAlias
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter
from switchboard.billing.v1 import billing_pb2
from switchboard_common.errors import ApiError, InsufficientQuota

from switchboard_router.billing_client import BillingClient
from switchboard_router.domain import Caller, Endpoint, ParsedRequest, Target, Tokens
from switchboard_router.prices import PriceKey, Prices, Rates, answering_rates, price_key
from switchboard_router.usage import Exchange, Outcome
from switchboard_router.tokens import Tokenizer, chat_chars, in_worker, input_chars

_log = structlog.get_logger("budgets")
# (model, endpoint, the key's allowed_models) -> every deployment a request may be sent to
# (routing.Routes.reachable).
Reach: TypeAlias = Callable[[str, Endpoint, frozenset[str]], Sequence[Target]]
SWEEP_SECONDS = 60.0  # how often budget slices whose lease expired unused are forgotten
_RETRY_SECONDS = 5.0  # a key known to have no budget asks billing again after this, if it was away
REFUSED = Counter("switchboard_router_budget_refusals_total",
                  "Requests refused with 402 because a key's or tenant's budget was spent")
LEASES = Counter("switchboard_router_budget_lease_calls_total",
                 "LeaseBudget calls to billing (a top-up, a renewal or a first look at a key)",
                 ["result"])


@dataclass(frozen=True, slots=True)
class Estimate:
    micros_usd: int
    tokens: int


@dataclass(slots=True)
class Slice:
    """What this replica holds of one key's (and its tenant's) budgets: plain arithmetic."""

    lease_id: str  # "" when no budget of the key or its tenant applies
    expires_at: float  # monotonic seconds: renew before this
    limits_usd: bool = False
    limits_tokens: bool = False
    granted_usd: int = 0
    granted_tokens: int = 0
    spent_usd: int = 0  # settled from requests that ended
    spent_tokens: int = 0
    reserved_usd: int = 0  # estimates of requests in flight
    reserved_tokens: int = 0
    # What the budget had left for every replica after the last grant (billing's `remaining`).
    pool_usd: int = 0
    pool_tokens: int = 0
    known: bool = True  # False: a placeholder until billing first answers for the key
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def unlimited(self) -> bool:
        return not (self.limits_usd or self.limits_tokens)

    def room(self) -> Estimate:
        return Estimate(self.granted_usd - self.spent_usd - self.reserved_usd,
                        self.granted_tokens - self.spent_tokens - self.reserved_tokens)

    def fits(self, need: Estimate) -> bool:
        room = self.room()
        return ((not self.limits_usd or room.micros_usd >= need.micros_usd)
                and (not self.limits_tokens or room.tokens >= need.tokens))

    def shortfall(self, need: Estimate, times: int, share: int, *,
                  assume_empty: bool = False) -> Estimate:
        """What to ask billing for: enough for `times` such requests, or a `share`-th of what
        the budget had left at the last grant when that is more (a large budget is asked for
        rarely), beyond the room this slice has; never less than this request lacks; nothing
        in a unit no budget limits."""
        room = Estimate(0, 0) if assume_empty else self.room()
        usd = max(need.micros_usd * times, self.pool_usd // share) - room.micros_usd
        tok = max(need.tokens * times, self.pool_tokens // share) - room.tokens
        usd = max(usd, need.micros_usd - room.micros_usd, 0)
        tok = max(tok, need.tokens - room.tokens, 0)
        return Estimate(usd if self.limits_usd else 0, tok if self.limits_tokens else 0)

    def reserve(self, need: Estimate, rates: Rates,
                priced: dict[PriceKey, Rates] | None = None) -> Reservation:
        self.reserved_usd += need.micros_usd
        self.reserved_tokens += need.tokens
        return Reservation(self, need, rates, priced)

    def granted(self, reply: billing_pb2.LeaseBudgetResponse, expires_at: float) -> None:
        """Billing granted more on this lease (and renewed it)."""
        self.granted_usd += reply.granted_micros_usd
        self.granted_tokens += reply.granted_tokens
        self.limits_usd, self.limits_tokens = not reply.no_dollar_limit, not reply.no_token_limit
        self.pool_usd, self.pool_tokens = reply.remaining_micros_usd, reply.remaining_tokens
        self.expires_at = expires_at
        self.known = True

    def unused(self) -> Estimate:
        room = self.room()
        return Estimate(max(room.micros_usd, 0), max(room.tokens, 0))


@dataclass(slots=True)
class Reservation:
    slice: Slice
    held: Estimate
    rates: Rates  # the dearest of the request's deployments: for a cost no cached rate gives
    # Each of those deployments' rates, as read for the estimate: the answering one's are
    # handed on from here (costs.py), not read again.
    priced: dict[PriceKey, Rates] | None = None
    settled: bool = False

    def settle(self, cost_usd: int, tokens: int) -> None:
        """The request ended: its estimate leaves the slice, its real cost is spent from it
        (so a cost above the estimate is taken out of the room of the requests after it)."""
        if self.settled:
            return
        self.settled = True
        s = self.slice
        s.reserved_usd -= self.held.micros_usd
        s.reserved_tokens -= self.held.tokens
        s.spent_usd += cost_usd if s.limits_usd else 0
        s.spent_tokens += tokens if s.limits_tokens else 0


class Budgets:
    def __init__(self, billing: BillingClient, prices: Prices, tokenizer: Tokenizer, *,
                 default_max_tokens: int, lease_requests: int, renew_before_seconds: float,
                 lease_share: int = 8, reach: Reach | None = None,
                 replica_id: str | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._billing = billing
        self._prices = prices
        self._tokenizer = tokenizer
        self._default_max_tokens = default_max_tokens
        self._lease_requests = lease_requests
        self._lease_share = lease_share
        self._renew_before = renew_before_seconds
        self._reach = reach  # None: the plan's deployments are all a request may go to
        # One per process, not per pod: a restarted replica's lease must not be renewed by the
        # new process (which holds none of it) but expire, so billing reclaims what it held.
        self.replica_id = replica_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._wall_clock = wall_clock
        self._slices: dict[tuple[str, str], Slice] = {}
        self._next_sweep = clock() + SWEEP_SECONDS

    async def reserve(self, caller: Caller, request: ParsedRequest,
                      targets: Sequence[Target]) -> Reservation | None:
        """Reserve this request's estimated cost, or raise InsufficientQuota (402); None when no
        budget applies. `targets`: the plan, the first to be tried first. Raises
        ServiceUnavailable only when billing must be asked and cannot be."""
        scope = (caller.key_id, caller.tenant_id)
        if self._clock() >= self._next_sweep:
            self._sweep()
        current = self._slices.get(scope)
        if current is not None and current.unlimited and current.known:
            if self._clock() < current.expires_at:
                return None  # the common request: no budget, known as such for now
            async with current.lock:
                current = await self._renewed(caller, current)
            if current.unlimited:
                return None
        priced = await self.priced(caller, request, targets)
        rates = Rates.highest(list(priced.values()))
        need = await self.estimate(request, targets[0], rates)
        current = self._slices.get(scope)
        if current is not None and self._fresh(current) and current.fits(need):
            # No await since the check: nothing came between.
            return current.reserve(need, rates, priced)
        async with self._lock(scope):
            current = await self._topped_up(caller, need)
            if current.unlimited:
                return None
            if not current.fits(need):
                REFUSED.inc()
                raise InsufficientQuota(
                    "The budget of this key or its tenant is spent: this request's estimated "
                    f"cost ({need.micros_usd / 1e6:.6f} USD, {need.tokens} tokens) is more than "
                    "is left. Raise the budget or wait for its period to reset.",
                    code="budget_exceeded")
            return current.reserve(need, rates, priced)

    async def priced(self, caller: Caller, request: ParsedRequest,
                     targets: Sequence[Target]) -> dict[PriceKey, Rates]:
        """The rates of every deployment this request may be sent to: the plan's and, healthy or
        not, its model's and its fallbacks' and error fallbacks' that the key may use (each
        priced once): the estimate takes the dearest, the cost the answering one's."""
        model = request.model
        keys = [price_key(model, t) for t in targets]
        if self._reach is not None:
            keys = list(dict.fromkeys((*keys, *(price_key(model, t) for t in self._reach(
                model, request.endpoint, caller.allowed_models)))))
        return dict(zip(keys, await self._prices.rates(keys), strict=True))

    async def estimate(self, request: ParsedRequest, target: Target, rates: Rates) -> Estimate:
        """The most this request may cost: its prompt counted (a large one off the event loop),
        and all the output it may ask for."""
        prompt = await in_worker(_prompt_chars(request), self._tokenizer.count_prompt,
                                 request.endpoint, target.upstream_model, request.body)
        output = 0
        if request.endpoint in (Endpoint.CHAT, Endpoint.COMPLETIONS):
            output = (request.max_tokens or self._default_max_tokens) * max(request.n, 1)
        tokens = Tokens(prompt, output)
        return Estimate(rates.ceiling(tokens), tokens.total)

    def _sweep(self) -> None:
        """Forget the budget slices whose lease has expired with nothing in flight (billing
        has reclaimed what they held; the key's next request leases anew). A key known to have
        no budget stays known: while billing is away, that knowledge keeps it serving."""
        now = self._clock()
        self._next_sweep = now + SWEEP_SECONDS
        for scope, current in list(self._slices.items()):
            if (not current.unlimited and current.expires_at < now and not current.reserved_usd
                    and not current.reserved_tokens and not current.lock.locked()):
                del self._slices[scope]

    def __len__(self) -> int:
        return len(self._slices)

    def _fresh(self, current: Slice) -> bool:
        return self._clock() < current.expires_at - self._renew_before

    def _lock(self, scope: tuple[str, str]) -> asyncio.Lock:
        current = self._slices.get(scope)
        if current is None:  # a placeholder until billing first answers for the key
            current = self._slices[scope] = Slice(lease_id="", expires_at=-1.0, known=False)
        return current.lock

    async def _renewed(self, caller: Caller, current: Slice) -> Slice:
        """Under the lock: a key known to have no budget, asked again once that knowledge
        expired (another request may have asked meanwhile). While billing is away it keeps
        having none (a budget set meanwhile applies once billing answers), so billing being
        down fails only the requests of keys that have a budget."""
        current = self._slices[(caller.key_id, caller.tenant_id)]
        if not current.unlimited or self._clock() < current.expires_at:
            return current
        try:
            return await self._lease(caller, current, Estimate(0, 0))
        except ApiError as exc:
            if not current.known:
                raise
            _log.warning("billing unreachable; a key without a budget stays without one",
                         error=exc.code)
            current.expires_at = self._clock() + _RETRY_SECONDS
            return current

    async def _topped_up(self, caller: Caller, need: Estimate) -> Slice:
        """Under the lock: the slice, renewed if due and topped up if `need` does not fit
        (another request may have done either while this one waited)."""
        current = self._slices[(caller.key_id, caller.tenant_id)]
        if self._fresh(current) and (current.unlimited or current.fits(need)):
            return current
        times = self._lease_requests
        if current.unlimited:
            ask = Estimate(need.micros_usd * times, need.tokens * times)
        else:
            # A lease past its expiry may have been reclaimed: ask as if the slice held nothing.
            expired = self._clock() >= current.expires_at
            ask = current.shortfall(need, times, self._lease_share, assume_empty=expired)
        return await self._lease(caller, current, ask)

    async def _lease(self, caller: Caller, current: Slice, ask: Estimate) -> Slice:
        try:
            reply = await self._billing.lease(caller.key_id, caller.tenant_id, self.replica_id,
                                              ask.micros_usd, ask.tokens)
        except ApiError:
            LEASES.labels("failed").inc()
            raise
        LEASES.labels("granted").inc()
        expires = self._clock() + max(0.0, reply.expires_at.ToSeconds() - self._wall_clock())
        if reply.lease_id != current.lease_id:
            # A first lease, a new day's, or one billing reclaimed: what it grants is all there is.
            # Requests in flight settle on the slice they reserved from.
            current = Slice(lease_id=reply.lease_id, expires_at=expires, lock=current.lock)
            self._slices[(caller.key_id, caller.tenant_id)] = current
        current.granted(reply, expires)
        return current

    def settle(self, ex: Exchange, tokens: Tokens) -> None:
        """The request ended with these tokens: its reservation gives way to its real cost
        (what billing bills: nothing for a call that failed before the provider answered), at
        the answering deployment's rates (else the dearest it reserved at)."""
        reservation: Reservation = ex.reservation
        if ex.outcome is Outcome.ERROR and not ex.answered:
            reservation.settle(0, tokens.total)
            return
        rates = answering_rates(ex, self._prices) or reservation.rates
        reservation.settle(rates.cost(tokens), tokens.total)

    async def close(self) -> None:
        """At shutdown, after the requests drained: give back what every slice holds unused."""
        for current in list(self._slices.values()):
            unused = current.unused()
            if not current.lease_id or not (unused.micros_usd or unused.tokens):
                continue
            try:
                await self._billing.give_back(current.lease_id, unused.micros_usd, unused.tokens)
            except ApiError as exc:  # billing reclaims it when the lease expires
                _log.warning("budget slice not given back", lease_id=current.lease_id,
                             error=exc.code)


def _prompt_chars(request: ParsedRequest) -> int:
    body = request.body
    if request.endpoint is Endpoint.CHAT:
        return chat_chars(body.get("messages") or (), body.get("tools"))
    return input_chars(body.get("prompt") if request.endpoint is Endpoint.COMPLETIONS
                       else body.get("input"))
