"""`python -m bench.codecs`: what each provider codec costs the router, in microseconds of CPU.

Per request: building the provider's request and reading its whole answer (OpenAI: the model
swapped, the answer parsed for usage; Anthropic, Gemini and Bedrock: translated both ways, Bedrock's
request also SigV4-signed by botocore). Per stream: relaying the bench's answer (18 content deltas)
as it arrives, once in one read and once read by event (Bedrock's as event-stream frames, decoded
and CRC-checked by botocore). Every codec handles the same conversation (bench's two messages), so
the difference is translation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from botocore.credentials import Credentials

from switchboard_router.codecs import anthropic, aws_auth, bedrock, gemini, gemini_request, openai
from switchboard_router.domain import Deployment, Endpoint, ProviderSpec
from switchboard_router.providers.base import Call
from tests.fakes import anthropic_fake, bedrock_fake, bedrock_wire, gemini_fake, openai_wire
from tests.fakes.openai_answers import chat_answer

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write one short friendly sentence that greets a new colleague "
                                "on their very first day at work."},
]
BODY = {"model": "m", "messages": MESSAGES, "max_tokens": 64}
DEP = Deployment(route="m", name="m", provider="p", model=None, weight=1, timeout_seconds=600,
                 read_timeout_seconds=60, connect_timeout_seconds=10)


def _spec(kind: str) -> ProviderSpec:
    return ProviderSpec(name=kind, type=kind, base_url="http://127.0.0.1:1", api_key="k", headers={},
                        stream_usage=True, owned_by=kind, enabled=True, key_env=None,
                        timeout_seconds=None, read_timeout_seconds=None, connect_timeout_seconds=None)


def _call(stream: bool) -> Call:
    body = {**BODY, "stream": True} if stream else BODY
    return Call(endpoint=Endpoint.CHAT, body=body, model="m", upstream_model="claude-sonnet-4-5",
                deployment=DEP, request_id="r", include_usage=False)


def _fixtures() -> dict[str, tuple[bytes, list[bytes]]]:
    """(whole answer, stream events) in each provider's own format, for the same answer."""
    answer = chat_answer(BODY, "call_1")
    whole_openai = openai_wire.chat_completion("chatcmpl-1", 1, "m", answer, 1)
    stream_openai = openai_wire.chat_stream("chatcmpl-1", 1, "m", answer, 1, True)
    body = anthropic.translate_request(_call(False))
    content, stop = anthropic_fake.answer(body, iter(["toolu_1"]))
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": content, "stop_reason": stop, "stop_sequence": None,
               "usage": anthropic_fake.usage(body, content)}
    converse = bedrock.translate_request(_call(False))
    blocks, stop_bedrock = bedrock_wire.answer(converse, lambda: "tooluse_1", anthropic_fake._MARKER)
    use_bedrock = bedrock_wire.usage(converse, blocks, orjson.dumps)
    whole_bedrock = orjson.dumps({"output": {"message": {"role": "assistant", "content": blocks}},
                                  "stopReason": stop_bedrock, "usage": use_bedrock, "metrics": {"latencyMs": 1}})
    request = gemini_request.translate_request(_call(False))
    parts, finish = gemini_fake.answer(request)
    use = gemini_fake.usage(request, parts, cached=False)
    frames = gemini_fake.stream_frames(parts, finish, use, "gemini-2.5-flash", "resp-1")
    return {"openai": (whole_openai, stream_openai),
            "anthropic": (orjson.dumps(message), anthropic_fake.stream_events(message, False)),
            "gemini": (orjson.dumps(gemini_fake.response(parts, finish, use, "gemini-2.5-flash", "resp-1")),
                       [gemini_fake.sse_frame(f) for f in frames]),
            "bedrock": (whole_bedrock, bedrock_wire.stream_events(blocks, stop_bedrock, use_bedrock, orjson.dumps))}


def _bedrock() -> bedrock.BedrockCodec:
    """SigV4 with fixed credentials (what the chain resolved), so each request is signed."""
    signer = aws_auth.SigV4("us-east-1", lambda: Credentials(bedrock_fake.ACCESS_KEY, bedrock_fake.SECRET_KEY))
    codec = bedrock.BedrockCodec("https://bedrock-runtime.us-east-1.amazonaws.com", signer, {})
    asyncio.run(codec.authorize())
    return codec


def _per_call(fn: Callable[[], object], seconds: float) -> float:
    """Microseconds of process CPU per call, over about `seconds`."""
    n, spent = 0, 0.0
    batch = 100
    while spent < seconds:
        start = time.process_time()
        for _ in range(batch):
            fn()
        spent += time.process_time() - start
        n += batch
    return spent / n * 1e6


def measure(seconds: float = 0.5) -> dict[str, dict[str, float]]:
    fixtures = _fixtures()
    codecs = {"openai": openai.codec(_spec("openai")), "anthropic": anthropic.codec(_spec("anthropic")),
              "gemini": gemini.codec(_spec("gemini")), "bedrock": _bedrock()}
    out: dict[str, dict[str, float]] = {}
    for name, codec in codecs.items():
        whole, events = fixtures[name]
        joined = b"".join(events)
        call, streaming = _call(False), _call(True)

        def request(codec=codec, call=call, whole=whole) -> None:
            codec.request(call)
            codec.response(call, whole)

        def stream_one_read(codec=codec, call=streaming, joined=joined) -> None:
            codec.request(call)
            relay = codec.relay(call, len)
            relay.feed(joined)
            relay.finish()

        def stream_by_event(codec=codec, call=streaming, events=events) -> None:
            codec.request(call)
            relay = codec.relay(call, len)
            for event in events:
                relay.feed(event)
            relay.finish()

        out[name] = {"request_us": _per_call(request, seconds),
                     "stream_one_read_us": _per_call(stream_one_read, seconds),
                     "stream_by_event_us": _per_call(stream_by_event, seconds),
                     "stream_events": len(events)}
    return out


def table(results: dict[str, dict[str, float]], what: str = "codec", events: str = "events") -> str:
    lines = [f"| {what} | per request (µs) | per stream, one read (µs) | per stream, read by event (µs) "
             f"| {events} |", "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['request_us']:.1f} | {r['stream_one_read_us']:.1f} | "
                     f"{r['stream_by_event_us']:.1f} | {r['stream_events']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    print(table(measure()))


if __name__ == "__main__":
    main()
