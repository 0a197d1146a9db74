"""The pure parts of stored responses: whether a request stores, what it stores as its input, a
stored chain put before the new input (tool calls and their outputs carried), and the response a
stream leaves when it is cut or fails, valid by the openai SDK's own types."""

from __future__ import annotations

import orjson
import pytest
from openai.types.responses import Response
from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.sse import DONE, encode
from switchboard_router.inbound import responses, responses_answer


def _chunk(delta=None, finish=None) -> bytes:
    return encode(orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                                "model": "m", "choices": [{"index": 0, "delta": delta or {},
                                                           "finish_reason": finish}]}))


@pytest.mark.parametrize("storing, body, stored", [
    (True, {}, True), (True, {"store": None}, True), (True, {"store": True}, True),
    (True, {"store": False}, False), (False, {}, False), (False, {"store": False}, False)])
def test_a_response_is_stored_unless_it_says_not_to_as_at_openai(storing, body, stored):
    full = {"model": "m", "input": "x", **body}
    responses.to_chat(full, storing=storing)  # accepted
    assert responses.stores(full, storing) is stored
    assert responses_answer.shell(full, store=stored)["store"] is stored


@pytest.mark.parametrize("extra, param, code", [
    ({"store": True}, "store", "unsupported_parameter"),
    ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter")])
def test_with_storing_off_what_needs_it_is_refused_by_name(extra, param, code):
    with pytest.raises(InvalidRequest) as info:
        responses.to_chat({"model": "m", "input": "x", **extra}, storing=False)
    assert (info.value.param, info.value.code) == (param, code)
    assert "responses.store: false" in info.value.message


@pytest.mark.parametrize("extra, param", [({"store": "yes"}, "store"),
                                          ({"previous_response_id": 7}, "previous_response_id")])
def test_wrong_types_are_refused_by_name(extra, param):
    with pytest.raises(InvalidRequest) as info:
        responses.to_chat({"model": "m", "input": "x", **extra}, storing=True)
    assert (info.value.param, info.value.code) == (param, "invalid_type")


def test_a_string_input_is_stored_as_one_user_message_item():
    assert responses.input_items("hi") == [{"type": "message", "role": "user", "content": "hi"}]
    items = [{"role": "user", "content": "hi"}]
    assert responses.input_items(items) is items


def test_the_chain_comes_after_the_instructions_and_before_the_new_input_with_tool_calls():
    body = {"model": "m", "instructions": "be brief", "previous_response_id": "resp_2",
            "input": [{"type": "function_call_output", "call_id": "call_9", "output": "sunny"}]}
    # What memory's chain holds: the first response's input and output, then the second's.
    history = [
        {"type": "message", "role": "user", "content": "hello"},
        {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []}]},
        {"type": "message", "role": "user", "content": "weather in Paris?"},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_9",
         "name": "weather", "arguments": '{"city": "Paris"}'}]
    chat = responses.continued(responses.to_chat(body, storing=True), body, history)
    assert chat["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_9", "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}]
    no_instructions = {"model": "m", "input": "next"}
    chat = responses.continued(responses.to_chat(no_instructions, storing=True), no_instructions,
                               history[:2])
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "user"]


def _shell():
    return responses_answer.shell({"model": "m", "input": "x", "previous_response_id": "resp_0"},
                                  store=True)


def test_a_cut_stream_leaves_what_the_client_received_as_incomplete():
    stream = responses_answer.ResponsesStream(_shell())
    assert not stream.started
    stream.feed(_chunk({"role": "assistant", "content": "Half an ans"}))
    stream.feed(_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f",
                                                                             "arguments": "{"}}]}))
    assert stream.started and stream.final is None
    cut = Response.model_validate(stream.result())
    assert cut.status == "incomplete" and cut.output_text == "Half an ans"
    assert [(i.type, i.status) for i in cut.output] == [("message", "incomplete"),
                                                        ("function_call", "incomplete")]
    assert cut.previous_response_id == "resp_0" and cut.store is True


def test_a_stream_that_fails_midway_is_failed_with_its_error():
    stream = responses_answer.ResponsesStream(_shell())
    stream.feed(_chunk({"content": "Hi"}))
    stream.feed(encode(orjson.dumps({"error": {"message": "boom", "type": "upstream_error",
                                               "param": None, "code": "upstream_error"}})))
    failed = Response.model_validate(stream.result())
    assert failed.status == "failed" and failed.error.message == "boom"
    assert failed.output_text == "Hi"


def test_a_finished_stream_is_its_final_response():
    stream = responses_answer.ResponsesStream(_shell())
    stream.feed(_chunk({"content": "Hi"}))
    stream.feed(_chunk(finish="stop"))
    stream.feed(DONE)
    assert stream.done and stream.result() is stream.final
    assert Response.model_validate(stream.final).status == "completed"
