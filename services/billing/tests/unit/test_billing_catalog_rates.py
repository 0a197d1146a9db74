"""The catalog's flat-rate shortcut bills exactly what genai-prices' own `calc_price` bills, for
every model of the bundled price table it applies to, and leaves the rest to `calc_price`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import Usage, data_snapshot
from genai_prices.types import ModelPrice

from switchboard_billing.catalog import GenaiPricesCatalog, flat_cost_usd, flat_rates
from switchboard_billing.pricing import ModelRef, PriceBook
from switchboard_billing import price_config
from switchboard_billing.pricing import TokenCounts

AT = datetime(2026, 6, 1, tzinfo=UTC)
# (prompt, completion, cached part of the prompt, cache-write part of the prompt)
TOKENS = [TokenCounts(0, 0), TokenCounts(1, 0), TokenCounts(0, 1), TokenCounts(17, 64),
          TokenCounts(1200, 100, cached_prompt=200), TokenCounts(5000, 7, cache_write_prompt=999),
          TokenCounts(3_000_001, 123_457, cached_prompt=1_000_003, cache_write_prompt=77),
          TokenCounts(1_000_000, 0, cached_prompt=1_000_000)]


def _calc_price(model, provider, tokens: TokenCounts) -> Decimal:
    usage = Usage(input_tokens=tokens.prompt, output_tokens=tokens.completion,
                  cache_read_tokens=tokens.cached_prompt,
                  cache_write_tokens=tokens.cache_write_prompt)
    return model.calc_price(usage, provider, genai_request_timestamp=AT).total_price


def test_flat_rates_cost_what_calc_price_costs_for_every_model_in_the_table():
    snapshot = data_snapshot.get_snapshot()
    flat = 0
    for provider in snapshot.providers:
        for model in provider.models:
            rates = flat_rates(model)
            if rates is None:
                continue
            flat += 1
            for tokens in TOKENS:
                ours = flat_cost_usd(rates, tokens)
                assert ours == _calc_price(model, provider, tokens), (provider.id, model.id, tokens)
    assert flat > 1000  # most of the table takes the shortcut (2,097 flat prices in 0.13)


def test_tiered_and_dated_prices_are_left_to_calc_price():
    snapshot = data_snapshot.get_snapshot()
    shapes = {"tiered": 0, "dated": 0}
    for provider in snapshot.providers:
        for model in provider.models:
            if not isinstance(model.prices, ModelPrice):
                shapes["dated"] += 1
                assert flat_rates(model) is None, model.id
            elif any(not isinstance(v, Decimal) for k, v in vars(model.prices).items()
                     if v is not None and not k.startswith("_")):
                shapes["tiered"] += 1
                assert flat_rates(model) is None, model.id
    assert shapes["tiered"] and shapes["dated"]


def test_a_tiered_model_is_still_priced_by_its_tier():
    """Crossing a tier bills every token at the tier's rate: only calc_price knows that."""
    snapshot = data_snapshot.get_snapshot()
    catalog = GenaiPricesCatalog()
    tiered = [(p, m) for p in snapshot.providers for m in p.models
              if isinstance(m.prices, ModelPrice) and flat_rates(m) is None
              and getattr(m.prices, "input_mtok", None) is not None
              and not isinstance(m.prices.input_mtok, Decimal)]
    for provider, model in tiered:
        over = TokenCounts(model.prices.input_mtok.tiers[-1].start + 1, 10)
        if catalog._find(model.id, provider.id) is None or \
                catalog._find(model.id, provider.id).info is not model:
            continue  # another model of the provider answers to this id first
        assert catalog.cost_usd((model.id,), provider.id, over, AT) == \
            _calc_price(model, provider, over)
        under = TokenCounts(1000, 10)
        assert catalog.cost_usd((model.id,), provider.id, under, AT) < \
            catalog.cost_usd((model.id,), provider.id, over, AT)
        return
    raise AssertionError("no tiered model in the table")


def test_the_bench_model_through_the_price_book_is_the_same_micro_dollars():
    """gpt-4o-mini (flat, with per-search prices it never bills) through the whole PriceBook."""
    book = PriceBook(price_config.parse(None, {}), GenaiPricesCatalog())
    snapshot = data_snapshot.get_snapshot()
    provider, model = snapshot.find_provider_model("gpt-4o-mini", None, "openai", None)
    assert flat_rates(model) is not None
    for tokens in TOKENS:
        priced = book.price(ModelRef(model="gpt-4o-mini", provider="openai",
                                     upstream_model="gpt-4o-mini"), tokens, AT)
        expected = (_calc_price(model, provider, tokens) * 1_000_000).quantize(Decimal(1),
                                                                               rounding="ROUND_HALF_UP")
        assert priced.cost_micros_usd == int(expected) and not priced.price_unknown
