"""Billing's Prometheus counters: cost, tokens and requests per model, provider and key, with the
key label bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from switchboard_billing.domain import UsageEntry
from switchboard_billing.metrics import OTHER, UsageMetrics


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_counts_per_model_provider_and_bounded_key():
    metrics = UsageMetrics(key_limit=2)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [UsageEntry(request_id=str(i), occurred_at=at, key_id=f"mkey-{i}", model="mm",
                          provider="pp", prompt_tokens=10, completion_tokens=5, reasoning_tokens=2,
                          cost_micros_usd=100, price_unknown=False, outcome="success")
               for i in range(4)]
    before = value("switchboard_billing_cost_micros_usd_total", model="mm", provider="pp",
                   key_id=OTHER)
    metrics.count(entries)
    labels = {"model": "mm", "provider": "pp"}
    assert value("switchboard_billing_requests_total", **labels, key_id="mkey-0", outcome="success") == 1
    assert value("switchboard_billing_tokens_total", **labels, key_id="mkey-1", kind="reasoning") == 2
    # Keys past the bound share one series.
    assert value("switchboard_billing_requests_total", **labels, key_id="mkey-3", outcome="success") == 0
    assert value("switchboard_billing_cost_micros_usd_total", **labels, key_id=OTHER) - before == 200
    metrics.count([UsageEntry(request_id="u", occurred_at=at, key_id="mkey-0", model="mm",
                              provider="pp", outcome="success")])
    assert value("switchboard_billing_unpriced_requests_total", **labels, key_id="mkey-0") == 1
