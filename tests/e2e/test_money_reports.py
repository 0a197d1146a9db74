"""Money through the edge: every request priced (the catalog's version on each record), spend
reports in AILB's and AI Gateway's shapes with amounts as JSON numbers, exports streamed as CSV
and JSON lines, and budgets set with AILB's body and read at AILB's path."""

from __future__ import annotations

import csv
import io
import json

import httpx

from tests.e2e.test_http_edge import assert_openai_error, fake, post
from tests.e2e.test_usage_billing import create_key, wait_for_records


def admin(stack) -> dict:
    return {"authorization": f"Bearer {stack.master_key}"}


def get(stack, path: str, **params) -> httpx.Response:
    return httpx.get(stack.edge_url + path, params=params, headers=admin(stack), timeout=10)


def test_requests_are_priced_and_reported_in_dollars(any_stack):
    stack = any_stack
    key_id, secret = create_key(stack)
    chat = {"messages": [{"role": "user", "content": "price me"}]}
    responses = [post(stack, {**chat, "model": "gpt-4o-mini"}, key=secret),
                 post(stack, {**chat, "model": "gpt-4o-mini", "stream": True}, key=secret),
                 post(stack, {**chat, "model": "switchboard-local"}, key=secret),
                 post(stack, fake({**chat, "model": "gpt-4o-mini"}, "error-429"), key=secret)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    records = {r["request_id"]: r for r in wait_for_records(stack, key_id, 4)}
    paid, streamed, local, failed = (records[r.headers["x-request-id"]] for r in responses)
    for record in (paid, streamed):
        assert record["cost_micros_usd"] > 0 and record["price_unknown"] is False
        assert record["price_source"].startswith("genai-prices ")
        assert record["cost_usd"] == record["cost_micros_usd"] / 1_000_000
    assert (local["cost_micros_usd"], local["price_unknown"], local["price_source"]) == (
        0, False, "switchboard.yaml")
    assert (failed["outcome"], failed["cost_micros_usd"], failed["price_unknown"]) == ("error", 0, False)

    spend = get(stack, "/api/billing/spend", key_id=key_id, group_by="model,day").json()
    totals = spend["totals"]
    assert totals["requests"] == 4 and isinstance(totals["total_tokens"], int)
    assert totals["cost_micros_usd"] == paid["cost_micros_usd"] + streamed["cost_micros_usd"]
    assert isinstance(totals["cost_usd"], float) and totals["price_unknown"] is False
    groups = {g["model"]: g for g in spend["groups"]}
    assert set(groups) == {"gpt-4o-mini", "switchboard-local"}
    assert groups["gpt-4o-mini"]["totals"]["requests"] == 3 and len(groups["gpt-4o-mini"]["day"]) == 10
    by_hour = get(stack, "/api/billing/spend", key_id=key_id, group_by=["provider", "hour"],
                  period="weekly").json()
    assert {g["provider"] for g in by_hour["groups"]} == {"openai", "local"}
    assert all(g["hour"].endswith(":00:00Z") for g in by_hour["groups"])
    assert_openai_error(get(stack, "/api/billing/spend", group_by="color"), 400, param="group_by")


def test_exports_stream_every_record_as_csv_and_json_lines(stack):
    key_id, secret = create_key(stack)
    for _ in range(3):
        assert post(stack, {"model": "switchboard-local", "messages": [
            {"role": "user", "content": "export me"}]}, key=secret).status_code == 200
    wait_for_records(stack, key_id, 3)
    with httpx.stream("GET", stack.edge_url + "/api/billing/usage/export",
                      params={"format": "csv", "key_id": key_id}, headers=admin(stack),
                      timeout=10) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        text = resp.read().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 and {r["key_id"] for r in rows} == {key_id}
    assert rows[0]["cost_usd"] == "0.0" and rows[0]["price_source"] == "switchboard.yaml"
    lines = get(stack, "/api/billing/usage/export", format="jsonl", key_id=key_id).text.splitlines()
    assert [json.loads(line)["key_id"] for line in lines] == [key_id] * 3
    # A key exports only its own records, whatever it asks for.
    mine = httpx.get(stack.edge_url + "/api/billing/usage/export", params={"format": "jsonl"},
                     headers={"authorization": f"Bearer {secret}"}, timeout=10)
    assert {json.loads(line)["key_id"] for line in mine.text.splitlines()} == {key_id}
    assert_openai_error(get(stack, "/api/billing/usage/export", format="xml"), 400, param="format")


def test_budgets_in_ailbs_shape(stack):
    key_id, secret = create_key(stack)
    body = {"key_id": key_id, "monthly_limit_dollars": 500.0, "monthly_limit_tokens": 10_000_000}
    resp = httpx.post(stack.edge_url + "/api/billing/budget", json=body, headers=admin(stack),
                      timeout=10)
    assert resp.status_code == 200, resp.text
    budget = resp.json()
    assert (budget["limit_micros_usd"], budget["limit_usd"], budget["limit_tokens"]) == (
        500_000_000, 500.0, 10_000_000)
    shown = get(stack, f"/api/billing/budget/{key_id}").json()
    assert shown["period"] == "BUDGET_PERIOD_MONTHLY" and shown["remaining_usd"] == 500.0
    assert shown["spent_usd"] == 0.0 and shown["reserved_usd"] == 0.0 and shown["resets_at"]
    own = httpx.get(stack.edge_url + f"/api/billing/budget/{key_id}",
                    headers={"authorization": f"Bearer {secret}"}, timeout=10)
    assert own.status_code == 200 and own.json()["limit_usd"] == 500.0
    # AI Gateway's general form: daily and monthly limits, alerts, for a key or a tenant.
    general = {"key_id": key_id, "daily_limit_dollars": "2.5", "monthly_limit_micros_usd": "9000000",
               "alert_thresholds_percent": [75, 100]}
    resp = httpx.put(stack.edge_url + "/api/billing/budget", json=general, headers=admin(stack),
                     timeout=10)
    assert resp.status_code == 200, resp.text
    periods = {x["period"]: x for x in resp.json()["limits"]}
    assert periods["BUDGET_PERIOD_DAILY"]["limit_usd"] == 2.5
    assert periods["BUDGET_PERIOD_MONTHLY"]["limit_micros_usd"] == 9_000_000

    for bad, param in (({**body, "monthly_limit_dolars": 5}, "monthly_limit_dolars"),
                       ({**body, "monthly_limit_dollars": 1.0000001}, "monthly_limit_dollars"),
                       ({**body, "monthly_limit_dollars": "lots"}, "monthly_limit_dollars"),
                       ({"monthly_limit_dollars": 5}, "key_id")):
        resp = httpx.post(stack.edge_url + "/api/billing/budget", json=bad, headers=admin(stack),
                          timeout=10)
        assert_openai_error(resp, 400, param=param)
    member = httpx.post(stack.edge_url + "/api/billing/budget", json=body,
                        headers={"authorization": f"Bearer {secret}"}, timeout=10)
    assert_openai_error(member, 403, param="key_id")
    assert_openai_error(get(stack, f"/api/billing/budget/{key_id}", key_id="other"), 400,
                        param="key_id")
