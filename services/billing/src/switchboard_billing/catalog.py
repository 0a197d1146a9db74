"""The maintained price catalog: `genai-prices` (by the pydantic team), the data bundled with the
installed version (never fetched at run time), looked up by provider and model.

`ModelInfo.calc_price` is general (unit registry, usage decomposition, tiers, dates) and costs about
65 µs per event. Most models have one flat rate per token kind that never changes with time: for
those the rates are read once, when the model is first looked up, and the cost is the same exact
Decimal sum (`pricing.cost_micros`). Tiered, dated and non-token prices still go to `calc_price`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import genai_prices
import structlog
from genai_prices import Usage, data_snapshot
from genai_prices.types import ModelInfo, ModelPrice, Provider, TieredPrices

from switchboard_billing.price_config import Rates
from switchboard_billing.pricing import TokenCounts, cost_micros

_log = structlog.get_logger("catalog")
_MAX_CACHED = 10_000  # lookups kept; model names come from clients (passthrough routes)
_MICROS = Decimal(1_000_000)
# The price keys a flat rate covers: per-million prices of the four token counts we bill. Search
# prices are per search, which a usage event never reports, so they add nothing here either.
_TOKEN_KEYS = {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"}
_UNCOUNTED_KEYS = {"web_searches_kcount", "storage_searches_kcount"}


@dataclass(frozen=True, slots=True)
class _Model:
    provider: Provider
    info: ModelInfo
    flat: Rates | None  # the model's one flat, undated rate per token kind, if it has one


_Found = _Model | None


class GenaiPricesCatalog:
    def __init__(self) -> None:
        self.source = f"genai-prices {genai_prices.__version__}"
        self._snapshot = data_snapshot.get_snapshot()
        self._found: dict[tuple[str, str], _Found] = {}

    def cost_usd(self, refs: tuple[str, ...], provider: str, tokens: TokenCounts,
                 at: datetime) -> Decimal | None:
        """What the catalog charges for these tokens, or None when it prices none of `refs`."""
        found = self._first(refs, provider)
        if found is None:
            return None
        if found.flat is not None:
            return flat_cost_usd(found.flat, tokens)
        catalog_provider, model = found.provider, found.info
        usage = Usage(input_tokens=tokens.prompt, output_tokens=tokens.completion,
                      cache_read_tokens=tokens.cached_prompt,
                      cache_write_tokens=tokens.cache_write_prompt)
        try:
            return model.calc_price(usage, catalog_provider, genai_request_timestamp=at).total_price
        except (ValueError, TypeError, LookupError) as exc:  # priced in units we do not count
            _log.warning("catalog cannot price this model", model=model.id, error=str(exc)[:200])
            return None

    def flat_rates(self, refs: tuple[str, ...], provider: str) -> Rates | None:
        """The one flat, undated rate per token kind of the model `cost_usd` would price, if it
        has one (then `cost_usd` is exactly `flat_cost_usd` of it, whatever the time)."""
        found = self._first(refs, provider)
        return found.flat if found is not None else None

    def rates(self, refs: tuple[str, ...], provider: str, at: datetime) -> Rates | None:
        """The per-million prices (the base tier where prices are tiered), for estimates."""
        found = self._first(refs, provider)
        if found is None:
            return None
        prices = found.info.get_prices(at)
        base_input = _base(getattr(prices, "input_mtok", None))
        if base_input is None:
            return None
        cached = _base(getattr(prices, "cache_read_mtok", None))
        written = _base(getattr(prices, "cache_write_mtok", None))
        return Rates(input=base_input, output=_base(getattr(prices, "output_mtok", None)) or Decimal(0),
                     cached_input=base_input if cached is None else cached,
                     cache_write=base_input if written is None else written)

    def _first(self, refs: tuple[str, ...], provider: str) -> _Found:
        for ref in refs:
            if ref and (found := self._lookup(ref, provider)) is not None:
                return found
        return None

    def _lookup(self, ref: str, provider: str) -> _Found:
        key = (provider, ref)
        if key in self._found:
            return self._found[key]
        found = self._find(ref, provider) or (self._find(ref, "") if provider else None)
        if len(self._found) >= _MAX_CACHED:
            self._found.clear()
        self._found[key] = found
        return found

    def _find(self, ref: str, provider: str) -> _Found:
        try:
            catalog_provider, model = self._snapshot.find_provider_model(
                ref, None, provider or None, None)
        except LookupError:
            return None
        return _Model(catalog_provider, model, flat_rates(model))


def flat_cost_usd(rates: Rates, tokens: TokenCounts) -> Decimal:
    return cost_micros(rates, tokens) / _MICROS


def flat_rates(model: ModelInfo) -> Rates | None:
    """The model's rates when its price is one set of plain per-million token rates for all time
    (genai-prices bills cache tokens at the input rate when they have no rate of their own, as
    `Rates` does); None when only `calc_price` can price it."""
    prices = model.prices
    if not isinstance(prices, ModelPrice):  # dated (ConditionalPrice list): depends on `at`
        return None
    set_keys = {key: value for key, value in vars(prices).items()
                if not key.startswith("_") and value is not None}
    if not set_keys.keys() <= _TOKEN_KEYS | _UNCOUNTED_KEYS:
        return None
    rates = {key: set_keys.get(key) for key in _TOKEN_KEYS}
    if not all(v is None or (type(v) is Decimal and v.is_finite() and v >= 0)
               for v in rates.values()):
        return None  # tiered, or a value calc_price would refuse
    base_input = rates["input_mtok"]
    if base_input is None:
        return None
    cached, written = rates["cache_read_mtok"], rates["cache_write_mtok"]
    return Rates(input=base_input, output=rates["output_mtok"] or Decimal(0),
                 cached_input=base_input if cached is None else cached,
                 cache_write=base_input if written is None else written)


def _base(price: Decimal | TieredPrices | None) -> Decimal | None:
    return price.base if isinstance(price, TieredPrices) else price
