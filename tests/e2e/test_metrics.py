"""The edge's /metrics after a scripted mix of requests: the requests, tokens and cost it counts,
by label, are the ones the test sent and was told (usage in the answers, x-switchboard-cost-usd);
a made-up model name or a key id never becomes a label; each service's and Envoy's own metrics
are served beside them."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_http_edge import fake, post
from tests.e2e.test_usage_billing import create_key

Samples = dict[tuple[str, frozenset], float]


def scrape(stack, path: str = "/metrics") -> Samples:
    resp = httpx.get(stack.edge_url + path, timeout=10)
    assert resp.status_code == 200, resp.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def stream_usage(resp: httpx.Response) -> dict:
    chunks = [json.loads(line[6:]) for line in resp.text.splitlines()
              if line.startswith("data: {")]
    return next(c["usage"] for c in reversed(chunks) if c.get("usage"))


def test_edge_metrics_count_what_was_sent(stack):
    key_id, secret = create_key(stack)
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count me, please"}]}
    made_up = f"no-such-model-{uuid.uuid4().hex}"
    before = scrape(stack)
    whole = [post(stack, chat, key=secret) for _ in range(3)]
    streams = [post(stack, {**chat, "stream": True, "stream_options": {"include_usage": True}},
                    key=secret) for _ in range(2)]
    refused = post(stack, fake(chat, "error-429"), key=secret)
    unknown = post(stack, {**chat, "model": made_up}, key=secret)
    bad_key = post(stack, chat, key="sk-sb-not-a-real-key")
    wildcard = post(stack, {**chat, "model": "openai/gpt-4o-mini"}, key=secret)
    assert [r.status_code for r in [*whole, *streams, refused, unknown, bad_key, wildcard]] == \
        [200] * 5 + [429, 404, 401, 200]

    sent = 9
    after = scrape(stack)
    deadline = time.monotonic() + 20  # each request is counted as its usage is final
    while delta(after, before, "switchboard_requests_total") < sent and time.monotonic() < deadline:
        time.sleep(0.2)
        after = scrape(stack)
    assert delta(after, before, "switchboard_requests_total") == sent

    mini = {"model": "gpt-4o-mini", "provider": "openai"}
    assert delta(after, before, "switchboard_requests_total", **mini, outcome="success",
                 status="200") == 5
    assert delta(after, before, "switchboard_requests_total", **mini, outcome="error",
                 status="429") == 1
    assert delta(after, before, "switchboard_requests_total", model="other", status="404") == 1
    assert delta(after, before, "switchboard_requests_total", model="other", status="401") == 1
    assert delta(after, before, "switchboard_requests_total", model="openai/*", status="200") == 1
    assert delta(after, before, "switchboard_request_latency_ms_count", **mini,
                 outcome="success") == 5

    usages = [r.json()["usage"] for r in whole] + [stream_usage(r) for r in streams]
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    assert prompt > 0 and completion > 0
    assert delta(after, before, "switchboard_tokens_processed_total", **mini, type="prompt") == prompt
    assert delta(after, before, "switchboard_tokens_processed_total", **mini,
                 type="completion") == completion
    cost = sum(Decimal(r.headers["x-switchboard-cost-usd"]) for r in whole) + sum(
        Decimal(str(u["cost_usd"])) for u in usages[3:])
    assert cost > 0
    counted = Decimal(str(delta(after, before, "switchboard_cost_usd_total", **mini)))
    assert abs(counted - cost) < Decimal("0.000001")

    genai = {"gen_ai_request_model": "gpt-4o-mini", "gen_ai_provider_name": "openai",
             "gen_ai_operation_name": "chat"}
    assert delta(after, before, "gen_ai_client_token_usage_sum", **genai,
                 gen_ai_token_type="input") == prompt
    assert delta(after, before, "gen_ai_client_token_usage_count", **genai,
                 gen_ai_token_type="output") == 5
    assert delta(after, before, "gen_ai_client_operation_duration_seconds_count", **genai,
                 error_type="") == 5
    assert delta(after, before, "gen_ai_client_operation_duration_seconds_count", **genai,
                 error_type="rate_limit_error") == 1
    assert delta(after, before, "gen_ai_server_time_to_first_token_seconds_count", **genai) == 2

    values = {v for (_, labels) in after for _, v in labels}
    assert made_up not in values and key_id not in values


def test_each_service_and_envoy_serve_their_metrics(stack):
    for service in ("router", "auth", "billing", "guardrails", "memory"):
        samples = scrape(stack, f"/metrics/{service}")
        assert any(name.startswith("python_gc") for name, _ in samples), service
    methods = {dict(labels).get("method", "") for name, labels in scrape(stack, "/metrics/auth")
               if name == "switchboard_rpc_total"}
    assert any(m.startswith("/switchboard.auth.v1.AuthService/") for m in methods)
    envoy = scrape(stack, "/metrics/envoy")
    assert total(envoy, "envoy_http_downstream_rq_total", envoy_http_conn_manager_prefix="edge") > 0
    assert httpx.post(stack.edge_url + "/metrics", timeout=10).status_code in (404, 405)


def test_one_log_line_per_request_without_secrets(stack):
    key_id, secret = create_key(stack)
    resp = post(stack, {"model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": "log me, not my words"}]}, key=secret)
    assert resp.status_code == 200
    request_id = resp.headers["x-request-id"]
    log = stack.logs / "router.log"
    deadline = time.monotonic() + 20
    lines: list[dict] = []
    while not lines and time.monotonic() < deadline:
        time.sleep(0.2)
        lines = [json.loads(line) for line in log.read_text().splitlines()
                 if request_id in line and '"event":"request"' in line]
    assert len(lines) == 1, lines
    line = lines[0]
    usage = resp.json()["usage"]
    assert (line["key_id"], line["model"], line["provider"], line["status"], line["outcome"]) == \
        (key_id, "gpt-4o-mini", "openai", 200, "success")
    assert (line["prompt_tokens"], line["completion_tokens"]) == \
        (usage["prompt_tokens"], usage["completion_tokens"])
    assert line["cost_usd"] == resp.headers["x-switchboard-cost-usd"]
    assert line["latency_ms"] > 0 and line["deployment"]
    text = json.dumps(line)
    assert secret not in text and "log me" not in text and stack.master_key not in text
