"""Prices: switchboard.yaml's section read strictly, overrides over the genai-prices catalog, cost
in integer micro-dollars from the real token counts, unknown models flagged, failures free."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from switchboard_billing import price_config
from switchboard_billing.catalog import GenaiPricesCatalog
from switchboard_billing.domain import UsageEntry
from switchboard_billing.price_config import PriceConfigError, PriceOverrides
from switchboard_billing.pricing import CONFIG_SOURCE, ModelRef, PriceBook, TokenCounts
from switchboard_billing.records import priced

AT = datetime(2026, 6, 1, tzinfo=UTC)
CATALOG = GenaiPricesCatalog()


def book(section=None, env=None) -> PriceBook:
    return PriceBook(price_config.parse(section, env or {}), CATALOG)


def problems(section, env=None) -> dict[str, str]:
    with pytest.raises(PriceConfigError) as info:
        price_config.parse(section, env or {})
    return dict(info.value.problems)


def test_config_prices_are_exact_decimals_per_million_tokens():
    b = book({"models": {"mine": {"input": 0.15, "output": "0.6", "cached_input": 0.075}}})
    # 1,000 uncached + 200 cached prompt tokens, 100 completion tokens:
    # 1000 x 0.15 + 200 x 0.075 + 100 x 0.6 = 150 + 15 + 60 micro-dollars.
    cost = b.price(ModelRef(model="mine"), TokenCounts(1200, 100, cached_prompt=200), AT)
    assert (cost.cost_micros_usd, cost.price_unknown, cost.price_source) == (225, False, CONFIG_SOURCE)
    # Half a micro-dollar rounds up, never through a float.
    assert b.price(ModelRef(model="mine"), TokenCounts(3, 0), AT).cost_micros_usd == 0  # 0.45
    assert b.price(ModelRef(model="mine"), TokenCounts(10, 0), AT).cost_micros_usd == 2  # 1.5


def test_deployment_wins_over_model_and_model_over_catalog():
    b = book({"models": {"gpt-4o": {"input": 1, "output": 1}},
              "deployments": {"corp/gpt-4o": {"input": 2, "output": 2}}})
    tokens = TokenCounts(10, 10)
    assert b.price(ModelRef(model="gpt-4o", deployment="corp/gpt-4o"), tokens, AT).cost_micros_usd == 40
    assert b.price(ModelRef(model="gpt-4o", deployment="openai/gpt-4o"), tokens, AT).cost_micros_usd == 20
    # An alias the client sent is priced by the provider's own name for the model.
    assert book({"models": {"gpt-4o": {"input": 1, "output": 1}}}).price(
        ModelRef(model="fast", upstream_model="gpt-4o"), tokens, AT).cost_micros_usd == 20


def test_catalog_prices_with_its_version_and_cache_rates():
    b = book()
    cost = b.price(ModelRef(model="gpt-4o", provider="openai", upstream_model="gpt-4o"),
                   TokenCounts(1_000_000, 1_000_000, cached_prompt=500_000), AT)
    # gpt-4o in the catalog: $2.50 input, $1.25 cached input, $10 output per million tokens.
    assert cost.cost_micros_usd == 500_000 * 2_500_000 // 1_000_000 + 625_000 + 10_000_000
    assert cost.price_source.startswith("genai-prices ") and not cost.price_unknown
    # A provider name the catalog does not know still finds the model by its name.
    assert b.price(ModelRef(model="gpt-4o", provider="corp-proxy"), TokenCounts(1000, 0),
                   AT).cost_micros_usd == 2500
    embed = b.price(ModelRef(model="text-embedding-3-small", provider="openai"),
                    TokenCounts(1_000_000, 0), AT)
    assert embed.cost_micros_usd == 20_000


def test_unknown_models_cost_zero_and_are_flagged():
    cost = book().price(ModelRef(model="switchboard-local", provider="local"), TokenCounts(5, 5), AT)
    assert (cost.cost_micros_usd, cost.price_unknown, cost.price_source) == (0, True, "")
    only_config = PriceBook(price_config.parse({"catalog": "none"}, {}), CATALOG)
    assert only_config.price(ModelRef(model="gpt-4o", provider="openai"), TokenCounts(5, 5), AT).price_unknown


def test_calls_refused_before_any_work_are_free_and_the_rest_billed():
    b = book({"models": {"m": {"input": 1, "output": 1}}})
    base = UsageEntry(request_id="r", occurred_at=AT, model="m", prompt_tokens=10,
                      completion_tokens=5)
    assert (priced(base, b).cost_micros_usd, priced(base, b).price_unknown) == (15, False)
    refused = UsageEntry(**{**base.as_row(), "outcome": "error", "prompt_tokens": 0,
                            "completion_tokens": 0})
    failed = priced(refused, b)
    assert (failed.cost_micros_usd, failed.price_unknown) == (0, False)
    # Failed after the provider worked (a blocked answer, a stream cut midway): its tokens.
    for outcome in ("error", "client_abort", "interrupted"):
        assert priced(UsageEntry(**{**base.as_row(), "outcome": outcome}), b).cost_micros_usd == 15


def test_an_answer_from_the_routers_cache_costs_nothing_and_keeps_its_tokens():
    b = book({"models": {"m": {"input": 1, "output": 1}}})
    hit = UsageEntry(request_id="r", occurred_at=AT, model="m", prompt_tokens=10,
                     completion_tokens=5, cache_hit=True)
    out = priced(hit, b)
    assert (out.cost_micros_usd, out.price_unknown, out.price_source) == (0, False, "cache")
    assert (out.prompt_tokens, out.completion_tokens, out.cache_hit) == (10, 5, True)


def test_cache_parts_never_exceed_the_prompt():
    b = book({"models": {"m": {"input": 1, "output": 0, "cached_input": 0}}})
    # A provider claiming more cached tokens than the prompt had: the prompt is all cached.
    assert b.price(ModelRef(model="m"), TokenCounts(10, 0, cached_prompt=50), AT).cost_micros_usd == 0


def test_quotes_are_whole_micro_dollars_per_million_rounded_up():
    b = book({"models": {"m": {"input": "0.0000015", "output": 3}}})
    quote = b.quote(ModelRef(model="m"), AT)
    assert quote.rates is not None and quote.rates.input == Decimal("0.0000015")
    from switchboard_billing.pricing import per_million_micros
    assert per_million_micros(quote.rates.input) == 2 and per_million_micros(quote.rates.output) == 3_000_000
    assert b.quote(ModelRef(model="nothing-prices-this"), AT).rates is None


def test_bad_sections_name_the_field_path():
    assert problems({"models": {"m": {"input": -1}}}) == {
        "prices.models.m.input": "Input should be greater than or equal to 0"}
    assert problems({"models": {"m": {"output": 1}}}) == {
        "prices.models.m.input": "required (USD per million tokens)"}
    assert problems({"models": {"m": {"input": 1, "outptu": 1}}}) == {
        "prices.models.m.outptu": "unknown field"}
    assert list(problems({"catalog": "litellm"})) == ["prices.catalog"]
    assert list(problems({"models": {"m": {"input": True}}})) == ["prices.models.m.input"]
    assert problems({"models": {"m": {"input": "${PRICE}"}}}) == {
        "prices.models.m.input": "environment variable PRICE is not set (write ${PRICE:-} to make it optional)"}
    assert book({"models": {"m": {"input": "${PRICE}"}}}, {"PRICE": "2"}).price(
        ModelRef(model="m"), TokenCounts(3, 0), AT).cost_micros_usd == 6


def test_the_file_is_read_and_a_missing_section_means_the_catalog(tmp_path):
    path = tmp_path / "switchboard.yaml"
    path.write_text("providers: {}\nprices:\n  models:\n    m: {input: 1.5, output: 2}\n")
    overrides = price_config.load(path, {})
    assert overrides.models["m"].input == Decimal("1.5") and overrides.use_catalog
    path.write_text("providers: {}\n")
    assert price_config.load(path, {}) == PriceOverrides()
    with pytest.raises(PriceConfigError, match="cannot read"):
        price_config.load(tmp_path / "nope.yaml", {})


def test_the_repository_file_prices_the_local_model():
    from pathlib import Path
    root = Path(__file__).resolve().parents[4] / "switchboard.yaml"
    b = PriceBook(price_config.load(root, {}), CATALOG)
    local = b.price(ModelRef(model="switchboard-local", provider="local"), TokenCounts(5, 5), AT)
    assert (local.cost_micros_usd, local.price_unknown) == (0, False)


def test_a_priced_entry_is_the_entry_with_its_price_and_nothing_else_changed():
    from dataclasses import replace

    base = UsageEntry(request_id="r", occurred_at=AT, model="gpt-4o", provider="openai",
                      prompt_tokens=1000, completion_tokens=10, outcome="success")
    out = priced(base, book())
    assert out == replace(base, cost_micros_usd=out.cost_micros_usd, price_unknown=False,
                          price_source=CATALOG.source)
    assert base.price_unknown and base.cost_micros_usd == 0  # the original is left as it was


@pytest.mark.parametrize("tokens", [(3, 0, 0, 0), (10, 0, 0, 0), (1200, 100, 200, 0),
                                    (1000, 7, 50, 30), (5, 9, 9, 9), (0, 0, 0, 0),
                                    (10**9, 10**9, 10**8, -4)])
def test_the_kept_tariff_prices_exactly_as_the_decimal_sum(tokens):
    """The hot path's integer tariff gives what the Decimal path gives, half-ups included, for
    file prices and for the catalog's flat rates alike."""
    b = book({"models": {"mine": {"input": "0.15", "output": "0.6", "cached_input": "0.075",
                                  "cache_write": "0.1875"},
                         "whole": {"input": 3, "output": 15}}})
    prompt, completion, cached, written = tokens
    counts = TokenCounts(prompt, completion, cached, written)
    for model, provider in (("mine", ""), ("whole", ""), ("gpt-4o-mini", "openai"),
                            ("no-such-model", "")):
        want = b.price(ModelRef(model=model, provider=provider), counts, AT)
        got = b.tariff(model, provider, "", "").price(prompt, completion, cached, written, AT)
        assert got == want, model
    assert b.tariff("mine", "", "", "") is b.tariff("mine", "", "", "")  # looked up once


def test_a_full_tariff_memo_lets_go_of_the_least_recently_used_only(monkeypatch):
    from switchboard_billing import pricing

    monkeypatch.setattr(pricing, "_MAX_TARIFFS", 2)
    b = book({"models": {"a": {"input": 1, "output": 2}, "b": {"input": 1, "output": 2},
                         "c": {"input": 1, "output": 2}}})
    a, first_b = b.tariff("a", "", "", ""), b.tariff("b", "", "", "")
    assert b.tariff("a", "", "", "") is a  # used again: now the most recent
    b.tariff("c", "", "", "")  # full: "b", the least recently used, goes
    assert b.tariff("a", "", "", "") is a
    assert b.tariff("b", "", "", "") is not first_b  # looked up anew
