"""Stored responses through the router's real gRPC server and a real memory process (SQLite): a
response stored by default and continued by previous_response_id (the provider is sent the earlier
turn, tool calls and outputs included), read and deleted, kept per tenant, a cut stream kept as
the client received it, a refused request leaving nothing behind, and memory down failing only
the requests that need it. Also the typed twins of GET and DELETE (they run the routes), cancel
answered as OpenAI answers a response not created in the background (this gateway creates
none), and input_items in OpenAI's paged list shape, which the `openai` SDK's types read."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import grpc
import orjson
import pytest
from google.api import httpbody_pb2
from openai.types.responses import ResponseItemList
from router_fakes import ANSWER, GOOD_KEY, FakeKey
from router_harness import start_router, stop_router
from switchboard.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.timeout(120)
OTHER_TENANT, SAME_TENANT = "sk-test-other-tenant", "sk-test-same-tenant"
KEYS = {GOOD_KEY: FakeKey("key-good"), SAME_TENANT: FakeKey("key-same"),
        OTHER_TENANT: FakeKey("key-other", tenant_id="tenant-2")}


@pytest.fixture
async def router(tmp_path, tokenizer, nats_url, memory):
    h = await start_router(tmp_path, tokenizer, nats_url, auth_keys=KEYS, memory_target=memory.target)
    yield h
    await stop_router(h)


async def create(router, key: str = GOOD_KEY, **body):
    call = router.stub.Responses(httpbody_pb2.HttpBody(
        content_type="application/json", data=orjson.dumps({"model": "ok-model", **body})),
        metadata=router.md(key))
    return [m async for m in call]


async def answer(router, key: str = GOOD_KEY, **body) -> dict:
    messages = await create(router, key, **body)
    assert len(messages) == 1
    return orjson.loads(messages[0].data)


async def get(router, response_id: str, key: str = GOOD_KEY, **query) -> dict:
    reply = await router.stub.GetResponse(gateway_pb2.GetResponseRequest(
        response_id=response_id, **query), metadata=router.md(key))
    return orjson.loads(reply.data)


async def delete(router, response_id: str, key: str = GOOD_KEY) -> dict:
    reply = await router.stub.DeleteResponse(gateway_pb2.DeleteResponseRequest(
        response_id=response_id), metadata=router.md(key))
    return orjson.loads(reply.data)


async def refused(call) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        if isinstance(call, grpc.aio.UnaryStreamCall):
            async for _ in call:
                pass
        else:
            await call
    return {**dict(err.value.trailing_metadata() or ()), "message": err.value.details()}


def stored_rows(memory) -> int:
    with sqlite3.connect(Path(memory.log_path).parent / "memory.db") as db:
        return db.execute("SELECT count(*) FROM memory_responses").fetchone()[0]


async def test_a_stored_response_is_continued_read_and_deleted(router):
    first = await answer(router, instructions="Be brief.", input="My name is Ada.")
    assert first["store"] is True and first["status"] == "completed"
    assert first["output"][0]["content"][0]["text"] == ANSWER
    second = await answer(router, input="What is my name?", previous_response_id=first["id"])
    assert second["previous_response_id"] == first["id"]
    # The provider was sent the earlier turn before the new one; its instructions not again.
    assert router.upstream.requests[-1]["messages"] == [
        {"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "What is my name?"}]
    third = await answer(router, input=[{"role": "user", "content": "And now?"}],
                         previous_response_id=second["id"], instructions="Be kind.")
    assert [m["content"] for m in router.upstream.requests[-1]["messages"]] == [
        "Be kind.", "My name is Ada.", ANSWER, "What is my name?", ANSWER, "And now?"]

    assert await get(router, first["id"]) == first  # as answered
    assert await get(router, third["id"], key=SAME_TENANT) == third  # any key of the tenant
    assert await delete(router, second["id"]) == {"id": second["id"], "object": "response",
                                                  "deleted": True}
    md = await refused(router.stub.GetResponse(gateway_pb2.GetResponseRequest(
        response_id=second["id"]), metadata=router.md(GOOD_KEY)))
    assert (md["x-http-status"], md["message"]) == ("404", f"Response with id '{second['id']}' not found.")
    # A deleted link ends the chain: the follow-up of `third` has its own turn only.
    await answer(router, input="Last.", previous_response_id=third["id"])
    assert [m["content"] for m in router.upstream.requests[-1]["messages"]] == [
        "And now?", ANSWER, "Last."]


async def test_an_unknown_or_other_tenants_id_is_not_found(router):
    mine = await answer(router, input="secret plans")
    for response_id in (mine["id"], "resp_nope", "x" * 300):
        md = await refused(router.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
            "model": "ok-model", "input": "hi", "previous_response_id": response_id})),
            metadata=router.md(OTHER_TENANT)))
        assert (md["x-http-status"], md["x-error-code"], md["x-error-param"]) == (
            "400", "previous_response_not_found", "previous_response_id")
        assert md["message"] == f"Previous response with id '{response_id}' not found."
    for call in (router.stub.GetResponse(gateway_pb2.GetResponseRequest(response_id=mine["id"]),
                                         metadata=router.md(OTHER_TENANT)),
                 router.stub.DeleteResponse(gateway_pb2.DeleteResponseRequest(response_id=mine["id"]),
                                            metadata=router.md(OTHER_TENANT))):
        assert (await refused(call))["x-http-status"] == "404"
    assert (await get(router, mine["id"]))["id"] == mine["id"]  # still there for its own tenant
    md = await refused(router.stub.GetResponse(gateway_pb2.GetResponseRequest(
        response_id=mine["id"], stream=True), metadata=router.md(GOOD_KEY)))
    assert (md["x-http-status"], md["x-error-param"]) == ("400", "stream")


async def test_store_false_keeps_nothing_and_a_refused_request_leaves_nothing(router, memory):
    kept = stored_rows(memory)
    unstored = await answer(router, input="forget me", store=False)
    assert unstored["store"] is False
    assert (await refused(router.stub.GetResponse(gateway_pb2.GetResponseRequest(
        response_id=unstored["id"]), metadata=router.md(GOOD_KEY))))["x-http-status"] == "404"
    md = await refused(router.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
        "model": "broken", "input": "hi"})), metadata=router.md(GOOD_KEY)))
    assert md["x-http-status"] == "502"
    await router.app.stored_responses.drain()  # the in-progress copy is removed off the request
    assert stored_rows(memory) == kept


async def test_a_stream_stores_its_final_response_and_a_cut_one_what_the_client_got(router):
    messages = await create(router, input="stream it", stream=True)
    events = [orjson.loads(line[6:]) for m in messages for line in m.data.decode().split("\n")
              if line.startswith("data: ")]
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed"
    assert await get(router, final["id"]) == final

    call = router.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
        "model": "slow-stream", "input": "long one", "stream": True})), metadata=router.md(GOOD_KEY))
    seen = b""
    async for message in call:
        seen += message.data
        if seen.count(b"response.output_text.delta") >= 3:
            break
    call.cancel()
    response_id = orjson.loads(seen.split(b"data: ", 1)[1].split(b"\n", 1)[0])["response"]["id"]
    cut = {}
    for _ in range(100):
        cut = await get(router, response_id)
        if cut["status"] != "in_progress":
            break
        await asyncio.sleep(0.05)
    assert cut["status"] == "incomplete"
    text = cut["output"][0]["content"][0]["text"]
    assert text.startswith("w0 w1") and "w499" not in text

    messages = await create(router, model="midstream-abort", input="cut me", stream=True)
    created = orjson.loads(messages[0].data.split(b"data: ", 1)[1].split(b"\n", 1)[0])
    failed = await get(router, created["response"]["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"


async def test_memory_down_fails_only_the_requests_that_need_it(router, memory):
    earlier = await answer(router, input="before the outage")
    assert memory.stop(15) == 0
    assert (await answer(router, input="no storage", store=False))["status"] == "completed"
    streamed = await create(router, input="no storage", store=False, stream=True)
    assert b"response.completed" in b"".join(m.data for m in streamed)
    for call in (router.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
                     "model": "ok-model", "input": "stored by default"})), metadata=router.md(GOOD_KEY)),
                 router.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
                     "model": "ok-model", "input": "hi", "store": False,
                     "previous_response_id": earlier["id"]})), metadata=router.md(GOOD_KEY)),
                 router.stub.GetResponse(gateway_pb2.GetResponseRequest(response_id=earlier["id"]),
                                         metadata=router.md(GOOD_KEY))):
        md = await refused(call)
        assert (md["x-http-status"], md["x-error-code"]) == ("503", "memory_unavailable")
        assert "store: false" in md["message"]
    calls_before = len(router.upstream.requests)
    await refused(router.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
        "model": "ok-model", "input": "x"})), metadata=router.md(GOOD_KEY)))
    assert len(router.upstream.requests) == calls_before  # refused before the provider was called


async def test_with_storing_off_nothing_new_is_stored_and_what_was_stays_reachable(
        router, tmp_path, tokenizer, nats_url, memory):
    earlier = await answer(router, input="stored while storing was on")
    (tmp_path / "off").mkdir()
    off = await start_router(tmp_path / "off", tokenizer, nats_url, auth_keys=KEYS,
                             memory_target=memory.target, config={"responses": {"store": False}})
    try:
        rows = stored_rows(memory)
        plain = await answer(off, input="not kept")
        assert plain["store"] is False and stored_rows(memory) == rows
        for extra, param in (({"store": True}, "store"),
                             ({"previous_response_id": earlier["id"]}, "previous_response_id")):
            md = await refused(off.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
                "model": "ok-model", "input": "hi", **extra})), metadata=off.md(GOOD_KEY)))
            assert (md["x-http-status"], md["x-error-param"]) == ("400", param)
            assert "responses.store: false" in md["message"]
        # Responses stored before are still read and deleted (until retention removes them).
        assert await get(off, earlier["id"]) == earlier
        assert (await delete(off, earlier["id"]))["deleted"] is True
    finally:
        await stop_router(off)


INPUT = [{"role": "user", "content": "one"},
         {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
         {"role": "user", "content": [{"type": "input_text", "text": "three"}]},
         {"type": "message", "role": "user", "content": "four", "id": "msg_client_own"}]


async def items(router, response_id: str, key: str = GOOD_KEY, **query) -> dict:
    reply = await router.stub.ListResponseInputItems(gateway_pb2.ListResponseInputItemsRequest(
        response_id=response_id, **query), metadata=router.md(key))
    return orjson.loads(reply.data)


async def test_the_typed_twins_of_get_and_delete_answer_what_the_routes_answer(router):
    first = await answer(router, input="remember me")
    typed = await router.stub.GetResponseTyped(gateway_pb2.GetResponseRequest(response_id=first["id"]),
                                               metadata=router.md(SAME_TENANT))
    rest = orjson.loads((await router.stub.GetResponse(gateway_pb2.GetResponseRequest(
        response_id=first["id"]), metadata=router.md())).data)
    assert rest == first
    assert (typed.id, typed.status, typed.model, typed.store) == (first["id"], "completed", "ok-model", True)
    assert typed.output[0].content[0].text == ANSWER
    assert typed.usage.total_tokens == first["usage"]["total_tokens"] > 0
    # The route's own checks: replay parameters refused, another tenant's key finds nothing.
    md = await refused(router.stub.GetResponseTyped(gateway_pb2.GetResponseRequest(
        response_id=first["id"], stream=True), metadata=router.md()))
    assert (md["x-http-status"], md["x-error-param"]) == ("400", "stream")
    for call in (router.stub.GetResponseTyped(gateway_pb2.GetResponseRequest(response_id=first["id"]),
                                              metadata=router.md(OTHER_TENANT)),
                 router.stub.DeleteResponseTyped(gateway_pb2.DeleteResponseRequest(response_id=first["id"]),
                                                 metadata=router.md(OTHER_TENANT))):
        assert (await refused(call))["x-http-status"] == "404"

    deleted = await router.stub.DeleteResponseTyped(gateway_pb2.DeleteResponseRequest(response_id=first["id"]),
                                                    metadata=router.md())
    assert (deleted.id, deleted.object, deleted.deleted) == (first["id"], "response", True)
    md = await refused(router.stub.GetResponseTyped(gateway_pb2.GetResponseRequest(response_id=first["id"]),
                                                    metadata=router.md()))
    assert (md["x-http-status"], md["message"]) == ("404", f"Response with id '{first['id']}' not found.")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await router.stub.DeleteResponseTyped(gateway_pb2.DeleteResponseRequest(response_id=first["id"]),
                                              metadata=router.md())
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_cancel_is_openais_400_for_a_synchronous_response_and_404_for_an_unknown_one(router):
    done = await answer(router, input="finished already")
    md = await refused(router.stub.CancelResponse(gateway_pb2.CancelResponseRequest(response_id=done["id"]),
                                                  metadata=router.md()))
    assert (md["x-http-status"], md["x-error-type"]) == ("400", "invalid_request_error")
    assert md["message"].startswith("Cannot cancel a synchronous response.")
    assert "'background'" in md["message"]
    for response_id, key in (("resp_never_made", GOOD_KEY), (done["id"], OTHER_TENANT)):
        md = await refused(router.stub.CancelResponse(gateway_pb2.CancelResponseRequest(response_id=response_id),
                                                      metadata=router.md(key)))
        assert md["x-http-status"] == "404"
    # background itself stays refused by name, so no response here is ever cancellable
    md = await refused(router.stub.Responses(httpbody_pb2.HttpBody(data=orjson.dumps({
        "model": "ok-model", "input": "later", "background": True})), metadata=router.md()))
    assert (md["x-http-status"], md["x-error-param"]) == ("400", "background")
    assert (await router.stub.GetResponse(gateway_pb2.GetResponseRequest(response_id=done["id"]),
                                          metadata=router.md())).data  # cancel changed nothing


async def test_input_items_are_the_responses_own_paged_newest_first_as_openai_lists_them(router):
    first = await answer(router, input=INPUT)
    second = await answer(router, input="five", previous_response_id=first["id"])
    whole = await items(router, first["id"])
    listed = ResponseItemList.model_validate(whole)  # the openai SDK's own type
    assert [i.type for i in listed.data] == ["message"] * 4
    texts = [item["content"][0]["text"] for item in whole["data"]]
    assert texts == ["four", "three", "two", "one"]  # desc: newest first, OpenAI's default
    assert whole["data"][0]["id"] == "msg_client_own"  # the item's own id kept
    assert whole["data"][2]["role"] == "assistant" and whole["data"][2]["content"][0]["annotations"] == []
    assert (whole["first_id"], whole["last_id"], whole["has_more"]) == (
        whole["data"][0]["id"], whole["data"][-1]["id"], False)
    assert len({item["id"] for item in whole["data"]}) == 4

    page1 = await items(router, first["id"], limit=2, order="asc")
    assert [i["content"][0]["text"] for i in page1["data"]] == ["one", "two"] and page1["has_more"]
    page2 = await items(router, first["id"], limit=2, order="asc", after=page1["last_id"])
    assert [i["content"][0]["text"] for i in page2["data"]] == ["three", "four"]
    assert page2["has_more"] is False
    assert (await items(router, first["id"], limit=2, order="asc"))["data"] == page1["data"]  # stable ids
    # Only the response's own input, not the chain it continues; any key of the tenant reads it.
    own = await items(router, second["id"], key=SAME_TENANT)
    assert [i["content"][0]["text"] for i in own["data"]] == ["five"]

    for query, param in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"order": "newest"}, "order"),
                         ({"after": "msg_unknown"}, "after"), ({"include": ["message.input_image.image_url"]},
                                                              "include")):
        md = await refused(router.stub.ListResponseInputItems(gateway_pb2.ListResponseInputItemsRequest(
            response_id=first["id"], **query), metadata=router.md()))
        assert (md["x-http-status"], md["x-error-param"]) == ("400", param), query
    for response_id, key in (("resp_never_made", GOOD_KEY), (first["id"], OTHER_TENANT)):
        md = await refused(router.stub.ListResponseInputItems(gateway_pb2.ListResponseInputItemsRequest(
            response_id=response_id), metadata=router.md(key)))
        assert md["x-http-status"] == "404"
