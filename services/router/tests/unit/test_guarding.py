"""The router's side of guardrails against a fake GuardrailsService client: a redaction goes back
into the client's body, findings become one header, a stream's chunks carry what guardrails
releases (and the finish chunk what it held), a block keeps what was released before it, and
an unreachable service fails each policy as it last said."""

from __future__ import annotations

import grpc
from switchboard_common.errors import InvalidRequest
import orjson
import pytest
from google.protobuf.struct_pb2 import ListValue
from switchboard.guardrails.v1 import guardrails_pb2 as pb

from switchboard_router.codecs import sse
from switchboard_router.domain import Caller, Endpoint, ParsedRequest, RequestContext
from switchboard_router.answer_scan import StreamScan
from switchboard_router.guarding import (
    HEADER,
    Guard,
    GuardrailBlocked,
    GuardrailsUnavailable,
    translated,
)
from switchboard_router.pipeline import Pipeline, annotate
from switchboard_router.usage import Exchange

CALLER = Caller(key_id="k", tenant_id="t", guardrail_policy_ids=("pol_a",))
POLICIES = CALLER.guardrail_policy_ids


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                                grpc.aio.Metadata(), "connection refused")


class FakeCall:
    """A CheckOutputStream call answering from a script; records what it was sent."""

    def __init__(self, answers: list[pb.CheckOutputStreamResponse | Exception]) -> None:
        self.answers = answers
        self.sent: list[pb.CheckOutputStreamRequest] = []
        self.cancelled = False

    async def write(self, message) -> None:
        self.sent.append(message)

    async def read(self):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClient:
    def __init__(self, inputs=(), call: FakeCall | None = None) -> None:
        self.inputs = list(inputs)
        self.call = call
        self.checked: list[pb.CheckInputRequest] = []

    async def check_input(self, request):
        self.checked.append(request)
        answer = self.inputs.pop(0)
        if isinstance(answer, Exception):
            raise translated(answer)
        return answer

    def output_stream(self, timeout):
        return self.call


def ctx() -> RequestContext:
    return RequestContext(request_id="r", key="sk", started=0.0)


def chat(*messages, stream=False) -> ParsedRequest:
    body = {"model": "m", "messages": list(messages), "stream": stream}
    return ParsedRequest(endpoint=Endpoint.CHAT, model="m", body=body, stream=stream)


def redacted(*messages) -> ListValue:
    out = ListValue()
    out.extend(list(messages))
    return out


def finding(action, check="pii", entity="email") -> pb.Finding:
    return pb.Finding(check=check, action=action, entity=entity)


async def test_a_redaction_replaces_only_the_contents_of_the_clients_messages():
    tool_call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    request = chat({"role": "user", "content": "mail ana@example.com", "name": "ana"},
                   {"role": "assistant", "content": None, "tool_calls": [tool_call]})
    client = FakeClient([pb.CheckInputResponse(
        action=pb.ACTION_REDACT, findings=[finding(pb.ACTION_REDACT)],
        redacted_messages=redacted({"role": "user", "content": "mail [EMAIL]"},
                                   {"role": "assistant", "content": None}))])
    c = ctx()
    verdict = await Guard(client).check_input(request, POLICIES, c)
    assert verdict.request.body["messages"] == [
        {"role": "user", "content": "mail [EMAIL]", "name": "ana"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call]}]
    assert c.headers == [(HEADER, "redact:pii/email")]
    assert list(client.checked[0].policy_ids) == ["pol_a"]


async def test_prompts_are_checked_as_user_messages_and_token_ids_are_refused():
    request = ParsedRequest(endpoint=Endpoint.COMPLETIONS, model="m",
                            body={"model": "m", "prompt": "call 555"})
    client = FakeClient([pb.CheckInputResponse(
        action=pb.ACTION_REDACT, redacted_messages=redacted({"role": "user", "content": "[PHONE]"}))])
    verdict = await Guard(client).check_input(request, POLICIES, ctx())
    assert verdict.request.body["prompt"] == "[PHONE]"
    ids = ParsedRequest(endpoint=Endpoint.COMPLETIONS, model="m", body={"model": "m", "prompt": [1, 2]})
    with pytest.raises(Exception) as err:
        await Guard(FakeClient()).check_input(ids, POLICIES, ctx())
    assert getattr(err.value, "code", None) == "not_implemented"


async def test_a_block_names_the_checks_and_findings_make_one_header():
    client = FakeClient([pb.CheckInputResponse(action=pb.ACTION_BLOCK, findings=[
        finding(pb.ACTION_WARN, "pii", "email"), finding(pb.ACTION_WARN, "pii", "email"),
        finding(pb.ACTION_BLOCK, "prompt_injection", "")])])
    c = ctx()
    with pytest.raises(GuardrailBlocked) as err:
        await Guard(client).check_input(chat({"role": "user", "content": "x"}), POLICIES, c)
    assert err.value.code == "guardrail_blocked" and "prompt_injection check" in err.value.message
    assert c.headers == [(HEADER, "warn:pii/email,block:prompt_injection")]


async def test_retrieved_chunks_are_screened_as_tool_messages_and_a_blocked_one_left_out():
    client = FakeClient([pb.CheckInputResponse(action=pb.ACTION_BLOCK, findings=[
        pb.Finding(check="prompt_injection", action=pb.ACTION_BLOCK, message_index=1),
        pb.Finding(check="pii", action=pb.ACTION_WARN, message_index=0)])])
    c = ctx()
    left_out = await Guard(client).screen(["a chunk", "another chunk"], POLICIES, c)
    assert left_out == {1}
    sent = [dict(m) for m in client.checked[0].messages]
    # third-party content: guardrails scores it with its indirect-injection model
    assert sent == [{"role": "tool", "content": "a chunk"}, {"role": "tool", "content": "another chunk"}]
    assert c.headers == [(HEADER, "excluded:prompt_injection")]


async def test_unreachable_guardrails_fail_closed_until_the_policy_said_open():
    guard = Guard(FakeClient([unavailable(), pb.CheckInputResponse(
        action=pb.ACTION_ALLOW, fail_mode=pb.FAIL_MODE_OPEN), unavailable()]))
    request = chat({"role": "user", "content": "x"})
    with pytest.raises(GuardrailsUnavailable):  # never heard of: closed
        await guard.check_input(request, POLICIES, ctx())
    assert (await guard.check_input(request, POLICIES, ctx())).checked
    c = ctx()
    verdict = await guard.check_input(request, POLICIES, c)
    assert not verdict.checked and c.headers == [(HEADER, "unchecked")]


def event(content=None, finish=None) -> bytes:
    delta = {} if content is None else {"content": content}
    return sse.encode(orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]}))


def texts(data: bytes) -> list[str | None]:
    out = []
    for e in sse.SseDecoder().feed(data):
        if e.data and e.data.startswith(b"{"):
            out.append(orjson.loads(e.data)["choices"][0]["delta"].get("content"))
    return out


def scan(call: FakeCall, restorations=None) -> StreamScan:
    return StreamScan(Guard(FakeClient(call=call)), ("pol_a",), restorations or {"[E_1]": "x"},
                      ctx(), Endpoint.CHAT)


def release(text="", action=pb.ACTION_ALLOW, held=0) -> pb.CheckOutputStreamResponse:
    return pb.CheckOutputStreamResponse(action=action, release_text=text, held_chars=held)


async def test_a_stream_carries_what_guardrails_releases_and_the_finish_chunk_the_rest():
    call = FakeCall([release("Card ", held=4), release("", held=9), release("[CARD] ok")])
    s = scan(call)
    assert texts(await s.piece(event("Card 4111"))) == ["Card "]
    assert texts(await s.piece(event(" 1111") + event(None, "stop"))) == ["", "[CARD] ok"]
    assert await s.piece(sse.DONE) == sse.DONE  # passes as it came
    first, *rest = call.sent
    assert list(first.policy_ids) == ["pol_a"] and dict(first.restorations) == {"[E_1]": "x"}
    assert all(not m.policy_ids and not m.restorations for m in rest)
    assert [m.final for m in call.sent] == [False, False, True]


async def test_a_block_keeps_the_events_released_before_it():
    call = FakeCall([release("one "), release("", action=pb.ACTION_BLOCK)])
    s = scan(call)
    with pytest.raises(GuardrailBlocked) as err:
        await s.piece(event("one ") + event("4111 1111") + event("after"))
    assert texts(err.value.released) == ["one "]
    assert "answer was blocked" in err.value.message


async def test_a_stream_scan_that_loses_guardrails_fails_open_with_what_it_held():
    call = FakeCall([release("Hi ", held=3), unavailable()])
    guard = Guard(FakeClient(call=call))
    guard._remember(("pol_a",), pb.FAIL_MODE_OPEN)
    s = StreamScan(guard, ("pol_a",), {}, ctx(), Endpoint.CHAT)
    assert texts(await s.piece(event("Hi bob"))) == ["Hi "]
    assert texts(await s.piece(event(" smith"))) == ["bob smith"]
    later = event("more")
    assert await s.piece(later) is later  # unscanned from here on

    closed = StreamScan(Guard(FakeClient(call=FakeCall([unavailable()]))), ("pol_a",), {}, ctx(),
                        Endpoint.CHAT)
    with pytest.raises(GuardrailsUnavailable):
        await closed.piece(event("x"))


NATIVE_START = sse.encode(b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
               "content_block_start")
NATIVE_STOP = sse.encode(b'{"type":"content_block_stop","index":0}', "content_block_stop")


def _delta(text: str) -> bytes:
    return sse.encode(orjson.dumps({"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": text}}), "content_block_delta")


def _streamed_text(data: bytes) -> list[str]:
    return [orjson.loads(e.data)["delta"]["text"] for e in sse.SseDecoder().feed(data)
            if e.event == "content_block_delta"]


async def test_output_guardrails_read_the_text_of_anthropics_own_stream_natively_passed():
    call = FakeCall([release("Card ", held=4), release("", held=9), release("[CARD] ok")])
    ctx = RequestContext(request_id="r", key="sk", started=0.0, native=True)
    scan = StreamScan(Guard(FakeClient(call=call)), ("pol_a",), {}, ctx, Endpoint.CHAT)
    assert _streamed_text(await scan.piece(NATIVE_START + _delta("Card 4111"))) == ["Card "]
    # The block's last release goes out as a text delta just before the block ends.
    out = await scan.piece(_delta(" 1111") + NATIVE_STOP)
    assert _streamed_text(out) == ["", "[CARD] ok"] and out.endswith(NATIVE_STOP)
    thinking = sse.encode(b'{"type":"content_block_start","index":1,"content_block":{"type":"thinking"}}',
                      "content_block_start")
    assert await scan.piece(thinking) is thinking  # not text: passes as it came
    assert [m.text for m in call.sent] == ["Card 4111", " 1111", ""]
    assert [m.final for m in call.sent] == [False, False, True]


async def test_the_common_request_needs_no_pipeline_unless_the_gateway_has_a_default_policy():
    plain, request, c = Caller("k", "t"), chat({"role": "user", "content": "x"}), ctx()
    assert not Pipeline().needed(request, plain, c)
    assert Pipeline().needed(request, CALLER, c)
    defaulted = Pipeline(default_policy_ids=("pol_d", "pol_a"))
    assert defaulted.needed(request, plain, c) and defaulted.policies(plain, c) == ("pol_d", "pol_a")
    assert defaulted.policies(CALLER, c) == ("pol_d", "pol_a")  # once each, the default first


async def test_a_request_may_add_policies_but_never_take_any_away():
    request, c = chat({"role": "user", "content": "x"}), ctx()
    c.requested_policies = " pol_r, pol_a ,"
    pipeline = Pipeline()
    assert pipeline.needed(request, Caller("k", "t"), c)
    assert pipeline.policies(CALLER, c) == ("pol_a", "pol_r")
    c.requested_policies = "pol a"
    with pytest.raises(InvalidRequest) as err:
        pipeline.policies(CALLER, c)
    assert err.value.param == "x-switchboard-guardrail-policies"


def test_the_usage_record_says_what_the_headers_said():
    c = ctx()
    c.headers += [(HEADER, "warn:pii/email,block:pii/credit_card"),
                           ("x-switchboard-rag-sources", "doc#0")]
    ex = Exchange(request_id="r", endpoint=Endpoint.CHAT, started=0.0)
    annotate(ex, c)
    assert (ex.guardrails, ex.rag_sources) == ("warn:pii/email,block:pii/credit_card", "doc#0")
