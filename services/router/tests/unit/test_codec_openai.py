"""The OpenAI wire codec: request building, the relay across reads, error mapping."""

from __future__ import annotations

import orjson
import pytest
from switchboard_common import errors

from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.codecs import openai as codec
from switchboard_router.providers.base import Call

DEP = Deployment(route="m", name="p/m", provider="p", model=None, weight=1, timeout_seconds=600,
                 read_timeout_seconds=60, connect_timeout_seconds=10)


def _call(body: dict, *, include_usage: bool = False, endpoint: Endpoint = Endpoint.CHAT) -> Call:
    return Call(endpoint=endpoint, body=body, model="alias", upstream_model="real-model",
                deployment=DEP, request_id="r1", include_usage=include_usage)


def _words(text: str) -> int:
    return len(text.split())


def _relay(*, forward_usage: bool) -> codec.SseRelay:
    return codec.SseRelay(forward_usage=forward_usage, count=_words)


def _chunk(content: str | None = "x", *, usage=False, choices=True) -> bytes:
    event = {"id": "c", "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}] if choices else []}
    event["usage"] = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7} if usage else None
    return b"data: " + orjson.dumps(event) + b"\n\n"


def test_build_request_swaps_the_model_and_keeps_unknown_fields():
    wire = codec.wire("https://api.example.com/v1/", "sk-secret", {"X-Team": "a"}, stream_usage=True)
    body = {"model": "alias", "messages": [], "future": {"a": 1}, "session_id": "s", "rag_top_k": 3}
    url, headers, data = codec.build_request(wire, _call(body))
    assert url == "https://api.example.com/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-secret" and headers["X-Team"] == "a"
    assert orjson.loads(data) == {"model": "real-model", "messages": [], "future": {"a": 1}}
    assert body["model"] == "alias" and "session_id" in body  # the client's body is untouched


def test_build_request_asks_for_stream_usage_unless_the_vendor_refuses():
    wire = codec.wire("http://x", "k", {}, stream_usage=True)
    body = {"model": "m", "stream": True, "stream_options": {"other": 1}}
    sent = orjson.loads(codec.build_request(wire, _call(body))[2])
    assert sent["stream_options"] == {"other": 1, "include_usage": True}
    quiet = codec.wire("http://x", "k", {}, stream_usage=False)
    assert "stream_options" not in orjson.loads(codec.build_request(quiet, _call({"stream": True}))[2])
    azure_style = codec.wire("http://x", "k", {"api-key": "k"}, stream_usage=True)
    assert "Authorization" not in azure_style.headers


def test_parse_response_and_usage():
    parsed, usage = codec.parse_response(b'{"choices":[{"message":{"content":"hi"}}],'
                                         b'"usage":{"prompt_tokens":2,"completion_tokens":5}}')
    assert (usage.prompt, usage.completion, usage.total) == (2, 5, 7)
    assert codec.response_text(parsed) == "hi"
    _, usage = codec.parse_response(b'{"usage":{"prompt_tokens":9,"completion_tokens":5,'
                                    b'"prompt_tokens_details":{"cached_tokens":6},'
                                    b'"completion_tokens_details":{"reasoning_tokens":2}}}')
    assert (usage.prompt, usage.cached, usage.completion, usage.reasoning) == (9, 6, 5, 2)
    _, usage = codec.parse_response(b'{"data":[],"usage":{"prompt_tokens":4,"total_tokens":4}}')
    assert (usage.prompt, usage.completion) == (4, 0)
    with pytest.raises(errors.UpstreamError):
        codec.parse_response(b"<html>")


def test_relay_forwards_ordinary_reads_unchanged():
    relay = _relay(forward_usage=False)
    read = _chunk("a") + _chunk("b")
    assert relay.feed(read) is read  # no copy, no parse
    assert relay.feed(_chunk("c")[:10]) == b""  # incomplete event held back
    assert relay.feed(_chunk("c")[10:]) == _chunk("c")


def test_relay_hides_the_usage_chunk_the_client_did_not_ask_for():
    tail = _chunk(None, usage=True, choices=False) + b"data: [DONE]\n\n"
    hidden = _relay(forward_usage=False)
    hidden.feed(_chunk("a"))
    out = b""
    for i in range(len(tail)):  # split across reads, byte by byte
        out += hidden.feed(tail[i:i + 1])
    assert out == b"data: [DONE]\n\n" and hidden.done
    assert (hidden.usage.prompt, hidden.usage.completion) == (3, 4)
    assert hidden.completion_tokens() == 4  # the provider's count, not ours
    assert hidden.finish() == b""
    shown = _relay(forward_usage=True)
    assert shown.feed(tail) == tail


def test_a_whole_stream_in_one_read_goes_out_as_it_came_with_its_usage_read():
    whole = _chunk("a") + b": keep-alive\n\n" + _chunk("b") + _chunk(None, usage=True, choices=False) \
        + b"data: [DONE]\n\n"
    shown = _relay(forward_usage=True)
    assert shown.feed(whole) is whole  # found and parsed only the usage and [DONE], no copy
    assert shown.done and (shown.usage.prompt, shown.usage.completion) == (3, 4)
    hidden = _relay(forward_usage=False)
    assert hidden.feed(whole) == _chunk("a") + b": keep-alive\n\n" + _chunk("b") + b"data: [DONE]\n\n"
    assert hidden.done and hidden.usage is not None


def test_a_spaced_usage_is_still_read():
    event = b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}\n\n'
    relay = _relay(forward_usage=True)
    assert relay.feed(_chunk("a") + event) == _chunk("a") + event
    assert relay.usage is not None and relay.usage.completion == 4


def test_relay_ends_with_done_and_counts_text_without_usage():
    relay = _relay(forward_usage=False)
    relay.feed(_chunk("Hello") + _chunk(" world"))
    assert relay.finish() == b"data: [DONE]\n\n"
    assert relay.usage is None and relay.completion_tokens() == 2  # "Hello", " world"
    unterminated = _relay(forward_usage=False)
    assert unterminated.feed(_chunk("a")[:-2]) == b""
    assert unterminated.finish() == _chunk("a") + b"data: [DONE]\n\n"


def test_relay_notices_an_error_event():
    relay = _relay(forward_usage=False)
    event = b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
    assert relay.feed(event) == event
    assert isinstance(relay.error, errors.UpstreamError) and relay.error.message == "overloaded"


@pytest.mark.parametrize(("status", "kind", "http"), [
    (400, errors.InvalidRequest, 400), (422, errors.InvalidRequest, 400),
    (401, errors.UpstreamError, 502), (403, errors.UpstreamError, 502),
    (404, errors.NotFound, 404), (408, errors.UpstreamTimeout, 504),
    (413, errors.PayloadTooLarge, 413), (429, errors.RateLimited, 429),
    (500, errors.UpstreamError, 502), (503, errors.UpstreamError, 502),
])
def test_map_error(status, kind, http):
    body = orjson.dumps({"error": {"message": "Incorrect API key provided: sk-abc***xyz",
                                   "param": "messages", "code": "some_code"}})
    err = codec.map_error(status, body, "2.5")
    assert type(err) is kind and err.http_status == http
    if status in (401, 403):
        assert "sk-abc" not in err.message and err.code == "provider_auth_error"
    if status == 400:
        assert (err.param, err.code, err.message) == ("messages", "some_code",
                                                      "Incorrect API key provided: sk-abc***xyz")
    if status == 429:
        assert err.retry_after == 3


def test_map_error_without_a_json_body():
    err = codec.map_error(502, b"<html>Bad gateway</html>")
    assert err.http_status == 502 and "HTTP 502" in err.message
    assert codec.map_error(429, b"", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after is None


def test_a_providers_429_keeps_its_limits_but_not_the_operators_account_ids():
    body = orjson.dumps({"error": {
        "message": "Rate limit reached for gpt-4o in organization org-AbCdEf123456 on tokens per "
                   "min (TPM): Limit 30000, Used 29950, Requested 120. (project proj_Zy98Xw76Vu)",
        "code": "rate_limit_exceeded"}})
    err = codec.map_error(429, body)
    assert "org-AbCdEf123456" not in err.message and "proj_Zy98Xw76Vu" not in err.message
    assert "tokens per min (TPM): Limit 30000" in err.message


def test_the_relay_hands_on_where_the_usage_chunk_it_forwarded_is():
    from switchboard_router.costs import with_cost

    usage = _chunk(None, usage=True, choices=False)
    whole = _chunk("a") + usage + b"data: [DONE]\n\n"
    shown = _relay(forward_usage=True)
    out = shown.feed(whole)
    found = shown.usage_event
    assert found is not None and found.within is out and out[found.start:found.end] == usage[:-2]
    assert with_cost(out, 1250, True, found) == with_cost(out, 1250, True)  # not sought again
    # An event left out before it (a usage-only chunk the client did not ask for) moves it.
    both = _chunk("a") + usage + _chunk("b", usage=True) + b"data: [DONE]\n\n"
    hidden = _relay(forward_usage=False)
    out = hidden.feed(both)
    found = hidden.usage_event
    assert out == _chunk("a") + _chunk("b", usage=True) + b"data: [DONE]\n\n"
    assert found is not None and out[found.start:found.end] == _chunk("b", usage=True)[:-2]
    marked = with_cost(out, 1250, True, found)
    assert marked == with_cost(out, 1250, True)
    assert orjson.loads(marked.split(b"\n\n")[1][6:])["usage"]["cost_usd"] == 0.00125
    # Bytes the relay did not forward as they are (another object) are sought as before.
    copy = bytes(bytearray(out))
    assert copy is not out and with_cost(copy, 1250, False, found) == with_cost(out, 1250, False)
