"""input_items pages: stored items in OpenAI's listed shape (the `openai` SDK's types read them),
ids stable across pages, newest first by default, every bad parameter a 400 naming it; and the
one usage reading both inbound answers share."""

from __future__ import annotations

import pytest
from openai.types.responses import ResponseItemList
from switchboard_common.errors import InvalidRequest

from switchboard_router.inbound import chat_usage, input_items, messages_answer, responses_answer

STORED = [{"type": "message", "role": "user", "content": "hi"},
          {"role": "assistant", "content": "hello"},
          {"type": "function_call", "call_id": "call_1", "name": "clock", "arguments": "{}"},
          {"type": "function_call_output", "call_id": "call_1", "output": "noon"},
          {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and?"}],
           "id": "msg_mine"}]


def test_items_take_the_listed_shape_the_sdk_reads():
    page = input_items.page("resp_abc", STORED, after=None, limit=None, order="asc", include=[])
    listed = ResponseItemList.model_validate(page)
    assert [i.type for i in listed.data] == ["message", "message", "function_call",
                                             "function_call_output", "message"]
    assert [i["id"] for i in page["data"]] == ["msg_abc_0", "msg_abc_1", "fc_abc_2", "fco_abc_3", "msg_mine"]
    assert page["data"][0]["content"] == [{"type": "input_text", "text": "hi"}]
    assert page["data"][1]["content"] == [{"type": "output_text", "text": "hello", "annotations": []}]
    assert all(i["status"] == "completed" for i in page["data"])
    assert STORED[0]["content"] == "hi"  # the stored items are not changed


def test_pages_newest_first_by_default_and_after_an_id():
    first = input_items.page("resp_abc", STORED, after=None, limit=2, order=None, include=[])
    assert [i["id"] for i in first["data"]] == ["msg_mine", "fco_abc_3"]
    assert (first["first_id"], first["last_id"], first["has_more"]) == ("msg_mine", "fco_abc_3", True)
    rest = input_items.page("resp_abc", STORED, after="fco_abc_3", limit=20, order="desc", include=[])
    assert [i["id"] for i in rest["data"]] == ["fc_abc_2", "msg_abc_1", "msg_abc_0"]
    assert rest["has_more"] is False
    empty = input_items.page("resp_abc", STORED, after="msg_abc_0", limit=20, order=None, include=[])
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


@pytest.mark.parametrize("query, param", [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"order": "up"}, "order"),
    ({"after": "msg_nope"}, "after"), ({"include": ["message.output_text.logprobs"]}, "include")])
def test_a_bad_parameter_is_a_400_naming_it(query, param):
    args = {"after": None, "limit": None, "order": None, "include": [], **query}
    with pytest.raises(InvalidRequest) as info:
        input_items.page("resp_abc", STORED, **args)
    assert info.value.param == param


def test_include_brackets_are_read_from_the_original_path():
    metadata = (("x-envoy-original-path", "/v1/responses/r/input_items?limit=2&include[]=a&include[]=b"),)
    assert input_items.bracketed_query(metadata, "include") == ["a", "b"]
    assert input_items.bracketed_query((), "include") == []


def test_both_answers_read_one_usage():
    usage = {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
             "prompt_tokens_details": {"cached_tokens": 60, "cache_creation_tokens": 30},
             "completion_tokens_details": {"reasoning_tokens": 3}}
    assert chat_usage.read(usage) == chat_usage.ChatUsage(100, 7, 60, 30, 3)
    assert chat_usage.read(None) == chat_usage.ChatUsage(0, 0, 0, 0, 0)
    assert messages_answer.usage(usage) == {"input_tokens": 10, "cache_creation_input_tokens": 30,
                                            "cache_read_input_tokens": 60, "output_tokens": 7}
    assert responses_answer.usage(usage) == {
        "input_tokens": 100, "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
        "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 107}
