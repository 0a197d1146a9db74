"""The request metrics: what one finished request adds, by bounded labels."""

from __future__ import annotations

from prometheus_client import REGISTRY

from switchboard_router.domain import Deployment, Endpoint, Target, Tokens
from switchboard_router.metrics import RequestMetrics
from switchboard_router.usage import Exchange, Outcome


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _exchange(model: str, route: str, *, key_id: str = "key-1", stream: bool = False) -> Exchange:
    ex = Exchange(request_id="r", endpoint=Endpoint.CHAT, started=100.0, model=model,
                  stream=stream, key_id=key_id)
    ex.target = Target(Deployment(route=route, name="unit-dep", provider="unitprov", model=None,
                                  weight=1, timeout_seconds=1, read_timeout_seconds=1,
                                  connect_timeout_seconds=1), model)
    ex.ended = 100.25
    ex.first_byte = 100.05 if stream else None
    return ex


def test_a_request_adds_its_count_tokens_cost_and_genai_histograms():
    metrics = RequestMetrics(["unit-model"])
    labels = {"model": "unit-model", "provider": "unitprov", "deployment": "unit-dep", "key": ""}
    before = _value("switchboard_requests_total", **labels, outcome="success", status="200")
    before_tokens = _value("switchboard_tokens_processed_total", **labels, type="prompt")
    before_cost = _value("switchboard_cost_usd_total", **labels)
    before_ttft = _value("gen_ai_server_time_to_first_token_seconds_count",
                         gen_ai_operation_name="chat", gen_ai_provider_name="unitprov",
                         gen_ai_request_model="unit-model")
    for _ in range(2):
        metrics.observe(_exchange("unit-model", "unit-model", stream=True), Tokens(10, 5), 30)
    assert _value("switchboard_requests_total", **labels, outcome="success",
                  status="200") == before + 2
    assert _value("switchboard_tokens_processed_total", **labels, type="prompt") == before_tokens + 20
    assert abs(_value("switchboard_cost_usd_total", **labels) - before_cost - 60e-6) < 1e-12
    assert _value("gen_ai_server_time_to_first_token_seconds_count", gen_ai_operation_name="chat",
                  gen_ai_provider_name="unitprov", gen_ai_request_model="unit-model") == before_ttft + 2


def test_labels_stay_bounded_whatever_the_client_sends():
    metrics = RequestMetrics(["unit-model"])
    for i in range(50):
        metrics.observe(_exchange(f"unitprov/made-up-{i}", "unitprov/*", key_id=f"k{i}"),
                        Tokens(1, 1), None)
        ex = Exchange(request_id="r", endpoint=Endpoint.CHAT, started=1.0, model=f"nonsense-{i}")
        ex.outcome, ex.http_status, ex.ended = Outcome.ERROR, 404, 1.0
        metrics.observe(ex, Tokens(0, 0), None)
    values = {v for family in REGISTRY.collect() for s in family.samples for v in s.labels.values()}
    assert not any(v.startswith(("unitprov/made-up-", "nonsense-")) for v in values)
    assert not {f"k{i}" for i in range(50)} & values
    assert _value("switchboard_requests_total", model="unitprov/*", provider="unitprov",
                  deployment="unit-dep", key="", outcome="success", status="200") >= 50
    assert _value("switchboard_requests_total", model="other", provider="", deployment="",
                  key="", outcome="error", status="404") >= 50


def test_key_labels_are_opt_in():
    metrics = RequestMetrics(["unit-model"], key_labels=True)
    metrics.observe(_exchange("unit-model", "unit-model", key_id="key-opted-in"), Tokens(3, 4), None)
    assert _value("switchboard_requests_total", model="unit-model", provider="unitprov",
                  deployment="unit-dep", key="key-opted-in", outcome="success", status="200") == 1


def test_the_direct_increments_expose_what_prometheus_clients_own_would():
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from switchboard_router.metrics import _counter, _Histogram

    registry = CollectorRegistry()
    counter = Counter("unit_direct", "", ["way"], registry=registry)
    histogram = Histogram("unit_direct_seconds", "", ["way"], buckets=(0.5, 1, 2.5),
                          registry=registry)
    direct_counter, direct_histogram = _counter(counter.labels("direct")), _Histogram.of(
        histogram.labels("direct"))
    for amount in (0, 0.25, 0.5, 0.75, 1, 2.5, 2.6, 1000):  # bounds exactly, between, beyond
        counter.labels("own").inc(amount)
        direct_counter.inc(amount)
        histogram.labels("own").observe(amount)
        direct_histogram.observe(amount)

    def samples(way: str) -> list[tuple[str, str, float]]:
        return [(s.name, s.labels.get("le", ""), s.value) for family in registry.collect()
                for s in family.samples if s.labels.get("way") == way
                and not s.name.endswith("_created")]
    assert samples("direct") == samples("own")
    assert ("unit_direct_seconds_bucket", "1.0", 5.0) in samples("direct")
