"""`python -m bench.inbound`: what translating the inbound APIs (/v1/messages, /v1/responses) to
Chat Completions and back costs the router, in microseconds of CPU.

Per request: the client's body to a chat body, and the whole chat answer back. Per stream: the
chat stream (the bench's answer, 18 content deltas plus a usage chunk) into the API's events, in
one read and read by event. The conversation is bench.codecs' (two messages), so the figures add
to that table's: a /v1/messages call to an OpenAI-format provider costs both.

"/v1/messages native" is the pass-through to an Anthropic deployment, all of it (no codec cost
to add): the body validated and its chat view made, the provider's request built, and its answer
(the Anthropic fake's, the same text) read for usage with the model renamed, or its stream (that
many Anthropic events) forwarded through the relay.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from bench import codecs
from bench.codecs import MESSAGES, _per_call
from switchboard_router.codecs import anthropic_native
from switchboard_router.domain import Endpoint
from switchboard_router.inbound import messages, messages_answer, native, responses, responses_answer
from switchboard_router.providers.base import Call
from tests.fakes import anthropic_fake, openai_wire
from tests.fakes.openai_answers import chat_answer

BODY = {"model": "m", "messages": MESSAGES, "max_tokens": 64}
SYSTEM, USER = MESSAGES[0]["content"], MESSAGES[1]["content"]
MESSAGES_BODY = {"model": "m", "max_tokens": 64, "system": SYSTEM,
                 "messages": [{"role": "user", "content": USER}]}
RESPONSES_BODY = {"model": "m", "max_output_tokens": 64, "instructions": SYSTEM, "input": USER}


def _chat_fixtures() -> tuple[dict, list[bytes]]:
    answer = chat_answer(BODY, "call_1")
    whole = orjson.loads(openai_wire.chat_completion("chatcmpl-1", 1, "m", answer, 1))
    return whole, openai_wire.chat_stream("chatcmpl-1", 1, "m", answer, 1, True)


def _anthropic_fixtures() -> tuple[bytes, list[bytes]]:
    content, stop = anthropic_fake.answer(MESSAGES_BODY, iter(["toolu_1"]))
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
               "content": content, "stop_reason": stop, "stop_sequence": None,
               "usage": anthropic_fake.usage(MESSAGES_BODY, content)}
    return orjson.dumps(message), anthropic_fake.stream_events(message, False)


def measure(seconds: float = 0.5) -> dict[str, dict[str, float]]:
    whole, events = _chat_fixtures()
    raw_whole, joined = orjson.dumps(whole), b"".join(events)
    native_whole, native_events = _anthropic_fixtures()
    native_joined = b"".join(native_events)

    def native_call(body: dict) -> Call:
        read = native.read(body)
        return Call(endpoint=Endpoint.CHAT, body=read.chat, model="m", upstream_model="m",
                    deployment=None, request_id="r", native=read.body)  # type: ignore[arg-type]

    def native_request() -> None:
        call = native_call(MESSAGES_BODY)
        anthropic_native.request("http://x/v1/messages", {}, call)
        anthropic_native.response(call, native_whole)

    def native_stream(parts: list[bytes]) -> Callable[[], None]:
        def run() -> None:
            call = native_call({**MESSAGES_BODY, "stream": True})
            anthropic_native.request("http://x/v1/messages", {}, call)
            relay = anthropic_native.NativeRelay("m", len)
            for part in parts:
                relay.feed(part)
            relay.finish()
        return run

    def messages_request() -> None:
        messages.to_chat(MESSAGES_BODY)
        orjson.dumps(messages_answer.from_chat(orjson.loads(raw_whole), "m"))

    def responses_request() -> None:
        responses.to_chat(RESPONSES_BODY)
        orjson.dumps(responses_answer.from_chat(orjson.loads(raw_whole), responses_answer.shell(RESPONSES_BODY)))

    def messages_stream(parts: list[bytes]) -> Callable[[], None]:
        def run() -> None:
            messages.to_chat({**MESSAGES_BODY, "stream": True})
            stream = messages_answer.MessagesStream("m", 30)
            for part in parts:
                stream.feed(part)
        return run

    def responses_stream(parts: list[bytes]) -> Callable[[], None]:
        def run() -> None:
            responses.to_chat({**RESPONSES_BODY, "stream": True})
            stream = responses_answer.ResponsesStream(responses_answer.shell(RESPONSES_BODY))
            for part in parts:
                stream.feed(part)
        return run

    return {
        "/v1/messages": {"request_us": _per_call(messages_request, seconds),
                         "stream_one_read_us": _per_call(messages_stream([joined]), seconds),
                         "stream_by_event_us": _per_call(messages_stream(events), seconds),
                         "stream_events": len(events)},
        "/v1/messages native": {"request_us": _per_call(native_request, seconds),
                                "stream_one_read_us": _per_call(native_stream([native_joined]), seconds),
                                "stream_by_event_us": _per_call(native_stream(native_events), seconds),
                                "stream_events": len(native_events)},
        "/v1/responses": {"request_us": _per_call(responses_request, seconds),
                          "stream_one_read_us": _per_call(responses_stream([joined]), seconds),
                          "stream_by_event_us": _per_call(responses_stream(events), seconds),
                          "stream_events": len(events)},
    }


def table(results: dict[str, dict[str, float]]) -> str:
    return codecs.table(results, what="route", events="chat events")


def main() -> None:
    print(table(measure()))


if __name__ == "__main__":
    main()
