"""`python -m bench.inbound`: what translating the inbound APIs (/v1/messages, /v1/responses) to
Chat Completions and back costs the router, in microseconds of CPU.

Per request: the client's body to a chat body, and the whole chat answer back. Per stream: the
chat stream (the bench's answer, 18 content deltas plus a usage chunk) into the API's events, in
one read and read by event. The conversation is bench.codecs' (two messages), so the figures add
to that table's: a /v1/messages call to an OpenAI-format provider costs both.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from bench import codecs
from bench.codecs import MESSAGES, _per_call
from switchboard_router.inbound import messages, messages_answer, responses
from tests.fakes import openai_wire
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


def measure(seconds: float = 0.5) -> dict[str, dict[str, float]]:
    whole, events = _chat_fixtures()
    raw_whole, joined = orjson.dumps(whole), b"".join(events)

    def messages_request() -> None:
        messages.to_chat(MESSAGES_BODY)
        orjson.dumps(messages_answer.from_chat(orjson.loads(raw_whole), "m"))

    def responses_request() -> None:
        responses.to_chat(RESPONSES_BODY)
        orjson.dumps(responses.from_chat(orjson.loads(raw_whole), responses.shell(RESPONSES_BODY)))

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
            stream = responses.ResponsesStream(responses.shell(RESPONSES_BODY))
            for part in parts:
                stream.feed(part)
        return run

    return {
        "/v1/messages": {"request_us": _per_call(messages_request, seconds),
                         "stream_one_read_us": _per_call(messages_stream([joined]), seconds),
                         "stream_by_event_us": _per_call(messages_stream(events), seconds),
                         "stream_events": len(events)},
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
