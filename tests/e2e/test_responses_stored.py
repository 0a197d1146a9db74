"""Stored responses through the real edge, router and memory, with the official `openai` SDK:
responses.create(store=True), a follow-up by previous_response_id whose request to the provider
fake carries the earlier turn (the fake echoes every message it was sent), a tool call answered
by previous_response_id, responses.retrieve and responses.delete, input_items paged and cancel
answered as OpenAI answers a synchronous response, tenants kept apart, retention
deleting expired responses, and memory down failing only the requests that need it."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import openai
import pytest

from tests.e2e.conftest import _start_stack
from tests.e2e.test_memory_admin import call, tenant_key
from tests.e2e.test_responses_inbound import CLOCK, WEATHER

pytestmark = pytest.mark.timeout(180)
ECHO_ALL = "[fake:echo-all]"


def _client(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)


def _same_tenant_key(stack, tenant: str) -> str:
    made = call(stack, "POST", "/api/keys", json={"name": "second", "tenant_id": tenant})
    assert made.status_code == 200, made.text
    return made.json()["secret"]


def test_store_continue_retrieve_delete_with_the_sdk(stack):
    tenant, key = tenant_key(stack)
    client = _client(stack, key)
    first = client.responses.create(model="gpt-4o-mini", store=True, instructions="Be brief.",
                                    input="My name is Ada")
    assert first.store is True and first.output_text == "Echo: My name is Ada"
    second = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id,
                                     input=f"What is my name? {ECHO_ALL}")
    # What the provider was sent: the earlier turn, then the new one (instructions not again).
    assert second.output_text.startswith("Echo: user: My name is Ada | assistant: Echo: My name "
                                         "is Ada | user: What is my name?"), second.output_text
    assert second.previous_response_id == first.id

    assert client.responses.retrieve(first.id) == first
    other_key = _client(stack, _same_tenant_key(stack, tenant))
    assert other_key.responses.retrieve(second.id).output_text == second.output_text
    raw = client.responses.with_raw_response.delete(first.id)
    assert raw.status_code == 200
    assert json.loads(raw.text) == {"id": first.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(first.id)
    assert info.value.body["message"] == f"Response with id '{first.id}' not found."
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)


def test_a_streamed_response_is_stored_as_completed(stack):
    _, key = tenant_key(stack)
    client = _client(stack, key)
    with client.responses.stream(model="gpt-4o-mini", input="stream and keep me") as stream:
        final = stream.get_final_response()
    assert final.status == "completed" and final.store is True
    kept = client.responses.retrieve(final.id)
    assert kept.status == "completed" and kept.output_text == final.output_text
    assert kept.usage == final.usage


def test_a_tool_call_is_answered_by_previous_response_id(stack):
    _, key = tenant_key(stack)
    client = _client(stack, key)
    asked = client.responses.create(model="gpt-4o-mini", input="call_tools for Paris",
                                    tools=[WEATHER, CLOCK])
    calls = [item for item in asked.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["weather", "clock"]
    answered = client.responses.create(model="gpt-4o-mini", previous_response_id=asked.id,
                                       tools=[WEATHER, CLOCK], input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
        {"type": "function_call_output", "call_id": calls[1].call_id, "output": "noon"}])
    assert answered.output_text == "Echo: sunny | noon"


def test_another_tenants_response_does_not_exist_for_it(stack):
    (_, key), (_, other) = tenant_key(stack), tenant_key(stack)
    mine = _client(stack, key).responses.create(model="gpt-4o-mini", input="the code is heron")
    stranger = _client(stack, other)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError) as info:
        stranger.responses.create(model="gpt-4o-mini", previous_response_id=mine.id,
                                  input=f"what is the code? {ECHO_ALL}")
    assert info.value.body == {
        "message": f"Previous response with id '{mine.id}' not found.",
        "type": "invalid_request_error", "param": "previous_response_id",
        "code": "previous_response_not_found"}
    assert _client(stack, key).responses.retrieve(mine.id).id == mine.id


def test_store_false_is_not_kept_and_unserved_get_options_are_refused(stack):
    _, key = tenant_key(stack)
    client = _client(stack, key)
    unstored = client.responses.create(model="gpt-4o-mini", input="forget me", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    kept = client.responses.create(model="gpt-4o-mini", input="keep me")
    resp = httpx.get(f"{stack.base_url}/responses/{kept.id}?stream=true", timeout=10,
                     headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "stream"
    resp = httpx.put(f"{stack.base_url}/responses/{kept.id}", timeout=10,
                     headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 405 and set(resp.headers["allow"].split(", ")) == {"DELETE", "GET"}


def test_input_items_page_with_the_sdk_and_cancel_answers_as_openai(stack):
    _, key = tenant_key(stack)
    client = _client(stack, key)
    made = client.responses.create(model="gpt-4o-mini", input=[
        {"role": "user", "content": f"word {n}"} for n in range(5)])
    newest = client.responses.input_items.list(made.id, limit=2)  # desc: OpenAI's default
    assert [i.content[0].text for i in newest.data] == ["word 4", "word 3"] and newest.has_more
    # The SDK's cursor pages through `after` to the end, each item once.
    every = [i.content[0].text for i in client.responses.input_items.list(made.id, limit=2, order="asc")]
    assert every == [f"word {n}" for n in range(5)]
    with pytest.raises(openai.BadRequestError) as info:  # include[]=... as the SDK sends it
        client.responses.input_items.list(made.id, include=["message.input_image.image_url"])
    assert info.value.body["param"] == "include"
    with pytest.raises(openai.BadRequestError) as info:  # and on GET /v1/responses/{id}
        client.responses.retrieve(made.id, include=["message.output_text.logprobs"])
    assert info.value.body["param"] == "include"
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_never_made")

    with pytest.raises(openai.BadRequestError) as info:
        client.responses.cancel(made.id)
    assert info.value.body["message"].startswith("Cannot cancel a synchronous response.")
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_never_made")
    assert client.responses.retrieve(made.id).status == "completed"


@pytest.fixture(scope="module")
def short_retention_stack(tmp_path_factory, fake_openai):
    s = _start_stack(tmp_path_factory.mktemp("responses-retention"), fake_openai, {
        "SWITCHBOARD_MEMORY_RESPONSE_TTL_SECONDS": "2",
        "SWITCHBOARD_MEMORY_RETENTION_SWEEP_SECONDS": "0.5"})
    yield s
    s.stop()


def _rows(stack, response_id: str) -> int:
    with sqlite3.connect(stack.data_dir / "memory.db") as db:
        return db.execute("SELECT count(*) FROM memory_responses WHERE response_id = ?",
                          (response_id,)).fetchone()[0]


def test_retention_deletes_expired_responses(short_retention_stack):
    stack = short_retention_stack
    _, key = tenant_key(stack)
    client = _client(stack, key)
    kept = client.responses.create(model="gpt-4o-mini", input="short-lived")
    assert client.responses.retrieve(kept.id).id == kept.id and _rows(stack, kept.id) == 1
    deadline = time.monotonic() + 20
    while _rows(stack, kept.id) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert _rows(stack, kept.id) == 0, "the sweep did not delete the expired response"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-4o-mini", previous_response_id=kept.id, input="hi")
    assert info.value.code == "previous_response_not_found"


def test_memory_down_fails_only_the_requests_that_need_it(short_retention_stack):
    stack = short_retention_stack
    _, key = tenant_key(stack)
    client = _client(stack, key)
    earlier = client.responses.create(model="gpt-4o-mini", input="before the outage")
    stack.services["memory"].terminate()
    assert stack.services["memory"].wait_stopped(15) is not None
    assert client.responses.create(model="gpt-4o-mini", input="hi",
                                   store=False).output_text == "Echo: hi"
    with client.responses.stream(model="gpt-4o-mini", input="hi", store=False) as stream:
        assert stream.get_final_response().output_text == "Echo: hi"
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "user", "content": "hi"}]).choices[0].message.content == "Echo: hi"
    needs_memory = [
        lambda: client.responses.create(model="gpt-4o-mini", input="stored by default"),
        lambda: client.responses.create(model="gpt-4o-mini", input="hi", store=False,
                                        previous_response_id=earlier.id),
        lambda: client.responses.retrieve(earlier.id),
        lambda: client.responses.delete(earlier.id)]
    for attempt in needs_memory:
        with pytest.raises(openai.InternalServerError) as info:
            attempt()
        assert info.value.status_code == 503
        assert info.value.body["code"] == "memory_unavailable"
        assert set(info.value.body) == {"message", "type", "param", "code"}
