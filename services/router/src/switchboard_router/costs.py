"""What a request cost, shown to the caller: `x-switchboard-cost-usd` on a whole answer (a
header), and `usage.cost_usd` in a stream's usage chunk (plus the `x-switchboard-cost-usd`
trailer for gRPC callers), from the provider's token counts at billing's rates.

The ledger's cost is billing's (it prices the usage event); this is the same arithmetic on the
same rates, so the two agree except where a catalog price has finer than micro-dollar rates per
million tokens (billing's quote rounds those up). A model billing has no price for costs 0 and
says so (`x-switchboard-price-unknown: true`, `usage.price_unknown`), as the ledger does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from switchboard_router.codecs.openai import USAGE
from switchboard_router.codecs.sse import UsageEvent, encode, parse, spans_at
from switchboard_router.domain import RequestContext, Tokens
from switchboard_router.prices import Prices, Rates, answering_rates, price_key, usd
from switchboard_router.usage import Exchange

COST_HEADER = "x-switchboard-cost-usd"
UNKNOWN_HEADER = "x-switchboard-price-unknown"


class Costs:
    def __init__(self, prices: Prices) -> None:
        self._prices = prices

    async def rates(self, ex: Exchange) -> Rates | None:
        """The rates of the deployment that answered, kept on the exchange for the rest of the
        request (prices.answering_rates); None when billing cannot say."""
        rates = answering_rates(ex, self._prices)
        if rates is None and ex.target is not None:
            rates = ex.rates = await self._prices.rates_or_none(price_key(ex.model, ex.target))
        return rates

    async def on_answer(self, ex: Exchange, usage: Tokens | None, ctx: RequestContext) -> None:
        """A whole answer: its cost as response headers (none when no usage was reported)."""
        rates = await self.rates(ex)  # also when no usage came: the settlement prices the count
        if rates is None or usage is None:
            return
        ctx.headers.append((COST_HEADER, usd(rates.cost(usage))))
        if not rates.known:
            ctx.headers.append((UNKNOWN_HEADER, "true"))

    async def stream_marker(self, ex: Exchange,
                            ctx: RequestContext) -> Callable[[bytes, Tokens], bytes] | None:
        """For a stream: a function that puts the cost into the usage chunk of the bytes it is
        given (and the trailer), or None when no rates are known."""
        rates = await self.rates(ex)
        if rates is None:
            return None

        def mark(data: bytes, usage: Tokens) -> bytes:
            cost = rates.cost(usage)
            ctx.trailers.append((COST_HEADER, usd(cost)))
            if ctx.native:  # Anthropic's own events go out as they came: the cost is the trailer's
                return data
            # OpenAI's relay hands on the usage chunk it found (codecs/openai.py); others do not.
            return with_cost(data, cost, rates.known, getattr(ex.tally, "usage_event", None))

        return mark


def with_cost(data: bytes, cost_micros: int, known: bool, found: UsageEvent | None = None) -> bytes:
    """Complete SSE events with `cost_usd` (dollars, a JSON number) added to the usage object of
    the chunk that carries one; every other event is left byte for byte (and unparsed). `found`:
    the usage chunk as the relay found it, if it is in `data` (then it is neither sought nor
    parsed again)."""
    if b"\r" in data:  # a relay forwards none: only a sought usage meets one
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    out: list[bytes] = []
    at = 0
    for start, end, chunk, name in _usage_chunks(data, found):
        usage = chunk["usage"]
        usage["cost_usd"] = cost_micros / 1_000_000
        if not known:
            usage["price_unknown"] = True
        out.append(data[at:start])
        out.append(encode(orjson.dumps(chunk), name)[:-2])
        at = end
    if not out:
        return data
    out.append(data[at:])
    return b"".join(out)


def _usage_chunks(data: bytes, found: UsageEvent | None
                  ) -> list[tuple[int, int, dict[str, Any], str | None]]:
    """(start, end, JSON, event name) of each event of `data` whose chunk has a usage object."""
    if found is not None and found.within is data:
        return [(found.start, found.end, found.chunk, found.event)]
    out = []
    for start, end in spans_at(data, [m.start() for m in USAGE.finditer(data)]):
        event = parse(data[start:end])
        chunk = _json(event.data) if event is not None and event.data else None
        if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
            out.append((start, end, chunk, event.event if event else None))
    return out


def _json(data: bytes):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
