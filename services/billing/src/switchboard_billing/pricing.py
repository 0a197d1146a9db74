"""What a request costs: switchboard.yaml's prices first (deployment, then model), then the
catalog; a model priced by neither costs 0 and is flagged price_unknown. Integer micro-dollars
from per-million rates (USD per million tokens x tokens = micro-dollars), exact and rounded half
up: a flat rate as integers over one power of ten, anything else summed in Decimal.

What each (model, provider, deployment, upstream model) is priced by is looked up once and kept
(`PriceBook.tariff`), bounded in size (the least recently used goes): both sources are fixed
for the life of the process (the file is read at start, the catalog is the installed version's
data), so an entry never goes stale and needs no expiry; a dated or tiered catalog price is kept
as "ask the catalog", which prices it by the request's time every time.
"""

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
_MAX_TARIFFS = 10_000  # model names come from clients (passthrough routes)


class FlatTariff:
    """One flat rate per token kind, as integers over 10**scale: a request's cost is a few
    integer operations, the same value the Decimal sum gives (rates are finite, >= 0)."""

    __slots__ = ("_input", "_cached", "_written", "_output", "_unit", "_source")

    def __init__(self, rates: Rates, source: str) -> None:
        values = (rates.input, rates.cached_input, rates.cache_write, rates.output)
        scale = max(0, *(-int(v.as_tuple().exponent) for v in values))
        self._input, self._cached, self._written, self._output = (
            int(v.scaleb(scale)) for v in values)
        self._unit = 10 ** scale
        self._source = source

    def price(self, prompt: int, completion: int, cached: int, written: int,
              at: datetime) -> Priced:
        cached = min(max(cached, 0), prompt)  # as TokenCounts.clamped
        written = min(max(written, 0), prompt - cached)
        total = ((prompt - cached - written) * self._input + cached * self._cached
                 + written * self._written + completion * self._output)
        return Priced((2 * total + self._unit) // (2 * self._unit), False, self._source)


class AskedTariff:
    """Priced by the book every time (dated or tiered catalog prices, or none known)."""

    __slots__ = ("_book", "_ref")

    def __init__(self, book: PriceBook, ref: ModelRef) -> None:
        self._book, self._ref = book, ref

    def price(self, prompt: int, completion: int, cached: int, written: int,
              at: datetime) -> Priced:
        return self._book.price(self._ref, TokenCounts(prompt, completion, cached, written), at)


class PriceBook:
    def __init__(self, overrides: PriceOverrides, catalog: Catalog | None) -> None:
        self._overrides = overrides
        self._catalog = catalog if overrides.use_catalog else None
        self._tariffs: dict[tuple[str, str, str, str], FlatTariff | AskedTariff] = {}

    @property
    def catalog_source(self) -> str:
        return self._catalog.source if self._catalog is not None else ""

    def tariff(self, model: str, provider: str, deployment: str,
               upstream_model: str) -> FlatTariff | AskedTariff:
        """What prices this model, looked up once (billing's hot path: a dict pop and put a record)."""
        key = (model, provider, deployment, upstream_model)
        tariffs = self._tariffs
        # Taken out and put back last: a dict keeps insertion order, so a full memo lets go of
        # its first key, the least recently used (cheaper per hit than OrderedDict.move_to_end).
        found = tariffs.pop(key, None)
        if found is None:
            found = self._tariff(ModelRef(model, provider, deployment, upstream_model))
            if len(tariffs) >= _MAX_TARIFFS:
                del tariffs[next(iter(tariffs))]
        tariffs[key] = found
        return found

    def _tariff(self, ref: ModelRef) -> FlatTariff | AskedTariff:
        rates = self._configured(ref)
        if rates is not None:
            return FlatTariff(rates, CONFIG_SOURCE)
        flat = getattr(self._catalog, "flat_rates", None)
        rates = flat(_refs(ref), ref.provider) if flat is not None else None
        if rates is not None:
            return FlatTariff(rates, self.catalog_source)
        return AskedTariff(self, ref)

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
