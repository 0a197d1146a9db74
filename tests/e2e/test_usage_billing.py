"""Every request leaves exactly one usage record in billing: success, error and client abort."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.test_http_edge import fake, post


def create_key(stack, **fields) -> tuple[str, str]:
    resp = httpx.post(stack.edge_url + "/api/keys", json={"name": "e2e", **fields},
                      headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return body["key"]["key_id"], body["secret"]


def usage_records(stack, key_id: str) -> list[dict]:
    resp = httpx.get(stack.edge_url + "/api/billing/usage", params={"key_id": key_id, "page_size": 1000},
                     headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["records"]


def wait_for_records(stack, key_id: str, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    records = usage_records(stack, key_id)
    while len(records) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        records = usage_records(stack, key_id)
    return records


def test_each_request_is_recorded_exactly_once(any_stack):
    stack = any_stack
    key_id, secret = create_key(stack)
    local = {"model": "switchboard-local", "messages": [{"role": "user", "content": "count me"}]}
    upstream = {**local, "model": "gpt-4o-mini"}
    responses = [
        post(stack, local, key=secret),
        post(stack, {**local, "stream": True}, key=secret),
        post(stack, upstream, key=secret),
        post(stack, {**upstream, "stream": True}, key=secret),
        post(stack, fake(upstream, "error-429"), key=secret),
        post(stack, {**local, "model": "no-such-model"}, key=secret),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429, 404]
    request_ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(request_ids)) == len(request_ids)

    records = wait_for_records(stack, key_id, len(request_ids))
    time.sleep(1.0)  # anything counted twice would show up by now
    records = usage_records(stack, key_id)
    assert sorted(r["request_id"] for r in records) == sorted(request_ids)
    by_id = {r["request_id"]: r for r in records}
    ok = by_id[request_ids[2]]
    assert ok["outcome"] == "success" and ok["provider"] == "openai" and ok["model"] == "gpt-4o-mini"
    assert ok["prompt_tokens"] > 0 and ok["completion_tokens"] > 0
    assert ok["total_tokens"] == ok["prompt_tokens"] + ok["completion_tokens"]
    assert by_id[request_ids[1]]["completion_tokens"] > 0  # stream without include_usage still counted
    assert by_id[request_ids[4]]["outcome"] == "error"

    spend = httpx.get(stack.edge_url + "/api/billing/spend", params={"key_id": key_id},
                      headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10).json()
    assert int(spend["totals"]["requests"]) == len(request_ids)
    assert int(spend["totals"]["total_tokens"]) == sum(r["total_tokens"] for r in records)


def test_client_abort_is_still_recorded(stack):
    key_id, secret = create_key(stack)
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "a long answer to walk away from [fake:slow-300]"}]}
    headers = {"authorization": f"Bearer {secret}"}
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", stack.base_url + "/chat/completions", json=body, headers=headers) as resp:
            assert resp.status_code == 200
            request_id = resp.headers["x-request-id"]
            for line in resp.iter_lines():
                if line.startswith("data: ") and '"content"' in line:
                    break  # walk away after the first content chunk
    records = wait_for_records(stack, key_id, 1)
    assert [r["request_id"] for r in records] == [request_id]
    assert records[0]["outcome"] == "client_abort"


def test_spend_needs_the_master_key_for_other_keys(stack):
    key_id, secret = create_key(stack)
    _, other_secret = create_key(stack)
    resp = httpx.get(stack.edge_url + "/api/billing/spend", params={"key_id": key_id},
                     headers={"authorization": f"Bearer {other_secret}"}, timeout=10)
    assert resp.status_code == 403
    own = httpx.get(stack.edge_url + "/api/billing/spend", params={"key_id": key_id},
                    headers={"authorization": f"Bearer {secret}"}, timeout=10)
    assert own.status_code == 200


@pytest.mark.parametrize("allowed", [["switchboard-local"]])
def test_key_limited_to_models_gets_403_elsewhere(stack, allowed):
    _, secret = create_key(stack, allowed_models=allowed)
    ok = post(stack, {"model": "switchboard-local", "messages": [{"role": "user", "content": "x"}]}, key=secret)
    assert ok.status_code == 200
    denied = post(stack, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}, key=secret)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "model_not_allowed"


def test_revoked_key_is_refused_at_once(stack):
    key_id, secret = create_key(stack)
    chat = {"model": "switchboard-local", "messages": [{"role": "user", "content": "x"}]}
    assert post(stack, chat, key=secret).status_code == 200  # the router now caches the verdict
    resp = httpx.delete(stack.edge_url + f"/api/keys/{key_id}",
                        headers={"authorization": f"Bearer {stack.master_key}"}, timeout=10)
    assert resp.status_code == 200
    deadline = time.monotonic() + 5
    status = post(stack, chat, key=secret).status_code
    while status == 200 and time.monotonic() < deadline:  # keys.changed is asynchronous
        time.sleep(0.1)
        status = post(stack, chat, key=secret).status_code
    assert status == 401
