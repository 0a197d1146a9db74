"""What a request costs: switchboard.yaml's prices first (deployment, then model), then the
catalog; a model priced by neither costs 0 and is flagged price_unknown. Integer micro-dollars,
computed in Decimal from per-million rates (USD per million tokens x tokens = micro-dollars)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from switchboard_billing.price_config import PriceOverrides, Rates

CONFIG_SOURCE = "switchboard.yaml"
_MICROS = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """A request's tokens; cached and cache-write tokens are parts of `prompt`."""

    prompt: int
    completion: int
    cached_prompt: int = 0
    cache_write_prompt: int = 0

    def clamped(self) -> TokenCounts:
        """Cache parts never exceed the prompt (a provider's odd report must not bill twice)."""
        cached = min(max(self.cached_prompt, 0), self.prompt)
        written = min(max(self.cache_write_prompt, 0), self.prompt - cached)
        return TokenCounts(self.prompt, self.completion, cached, written)


@dataclass(frozen=True, slots=True)
class Priced:
    cost_micros_usd: int
    price_unknown: bool
    price_source: str  # "" when unknown


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The usage event's names for what was called."""

    model: str = ""
    provider: str = ""
    deployment: str = ""
    upstream_model: str = ""


@dataclass(frozen=True, slots=True)
class Quote:
    rates: Rates | None  # None: no price known
    source: str


class Catalog(Protocol):
    source: str

    def cost_usd(self, refs: tuple[str, ...], provider: str, tokens: TokenCounts,
                 at: datetime) -> Decimal | None: ...

    def rates(self, refs: tuple[str, ...], provider: str, at: datetime) -> Rates | None: ...


UNKNOWN = Priced(0, True, "")
NOT_BILLED = Priced(0, False, "")  # a failed call: recorded, free


class PriceBook:
    def __init__(self, overrides: PriceOverrides, catalog: Catalog | None) -> None:
        self._overrides = overrides
        self._catalog = catalog if overrides.use_catalog else None

    @property
    def catalog_source(self) -> str:
        return self._catalog.source if self._catalog is not None else ""

    def price(self, ref: ModelRef, tokens: TokenCounts, at: datetime) -> Priced:
        tokens = tokens.clamped()
        rates = self._configured(ref)
        if rates is not None:
            return Priced(_round(cost_micros(rates, tokens)), False, CONFIG_SOURCE)
        if self._catalog is not None:
            usd = self._catalog.cost_usd(_refs(ref), ref.provider, tokens, at)
            if usd is not None:
                return Priced(_round(usd * _MICROS), False, self._catalog.source)
        return UNKNOWN

    def quote(self, ref: ModelRef, at: datetime) -> Quote:
        rates = self._configured(ref)
        if rates is not None:
            return Quote(rates, CONFIG_SOURCE)
        if self._catalog is not None:
            rates = self._catalog.rates(_refs(ref), ref.provider, at)
            if rates is not None:
                return Quote(rates, self._catalog.source)
        return Quote(None, "")

    def _configured(self, ref: ModelRef) -> Rates | None:
        o = self._overrides
        return (o.deployments.get(ref.deployment) or o.models.get(ref.model)
                or o.models.get(ref.upstream_model))


def cost_micros(rates: Rates, tokens: TokenCounts) -> Decimal:
    uncached = tokens.prompt - tokens.cached_prompt - tokens.cache_write_prompt
    return (uncached * rates.input + tokens.cached_prompt * rates.cached_input
            + tokens.cache_write_prompt * rates.cache_write + tokens.completion * rates.output)


def per_million_micros(rate: Decimal) -> int:
    """A rate as whole micro-dollars per million tokens, rounded up (estimates never short)."""
    return int((rate * _MICROS).to_integral_value(rounding="ROUND_CEILING"))


def _refs(ref: ModelRef) -> tuple[str, ...]:
    # The provider's own name for the model first: an alias ("fast") means nothing to a catalog.
    return (ref.upstream_model, ref.model)


def _round(micros: Decimal) -> int:
    return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_UP))
