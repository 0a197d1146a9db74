"""The fake Vertex AI's Anthropic models: `publishers/anthropic/models/{model}:rawPredict` and
`:streamRawPredict` take Anthropic's Messages body with the model in the path (a `model` in the
body is refused, as the `anthropic` SDK's AnthropicVertex never sends one) and an
`anthropic_version` (`vertex-2023-10-16`, or the SDK 2.x's API version);
`count-tokens:rawPredict` takes a count_tokens body with its model in the body. Both are
checked by the Anthropic fake's rules (the SDK's own types, extra fields refused) and answered
as the Anthropic fake answers, streams as Anthropic's SSE. The Bearer token is checked as on
Vertex's Gemini paths; a refused one is Google's 401, a refused body Anthropic's 400 (Vertex
relays the model's own errors).
https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude
https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude-count-tokens
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from tests.fakes import anthropic_fake, anthropic_rules
from tests.fakes.fake_server import json_or_none

if TYPE_CHECKING:
    from tests.fakes.gemini_fake import GeminiFake

VERSION = "vertex-2023-10-16"  # Google's documented value, which the gateway sends
# What Vertex takes: its documented value (the `anthropic` SDK <= 1.x sends it) and the API
# version the SDK >= 2.0's AnthropicVertex sends (its ANTHROPIC_API_VERSION).
VERSIONS = frozenset({VERSION, "2026-10-21"})
COUNT_MODEL = "count-tokens"
PATH = "/{version}/projects/{project}/locations/{location}/publishers/anthropic/models/{call}"


def validate(model: str, body: Any, *, stream: bool) -> dict[str, Any]:
    """The Messages body as Anthropic's fake checks it, the model from the path; raises
    anthropic_rules.Refusal."""
    if not isinstance(body, dict):
        raise anthropic_rules.Refusal(400, "The request body is not valid JSON.")
    if body.get("anthropic_version") not in VERSIONS:
        raise anthropic_rules.Refusal(400, f"anthropic_version: Input should be '{VERSION}'")
    if "model" in body:
        raise anthropic_rules.Refusal(400, "model: Extra inputs are not permitted (the model is "
                                           "the path's)")
    if bool(body.get("stream")) != stream:
        raise anthropic_rules.Refusal(400, "stream: must be true with :streamRawPredict and "
                                           "absent or false with :rawPredict")
    message = {k: v for k, v in body.items() if k != "anthropic_version"}
    message["model"] = model
    anthropic_rules.validate(message)
    return message


def validate_count(body: Any) -> dict[str, Any]:
    """A count_tokens body (its model in the body); anthropic_version optional, as Google's own
    example leaves it out and the SDK sends it."""
    if not isinstance(body, dict):
        raise anthropic_rules.Refusal(400, "The request body is not valid JSON.")
    if body.get("anthropic_version", VERSION) not in VERSIONS:
        raise anthropic_rules.Refusal(400, f"anthropic_version: Input should be '{VERSION}'")
    message = {k: v for k, v in body.items() if k != "anthropic_version"}
    anthropic_rules.validate(message, counting=True)
    return message


async def serve(fake: GeminiFake, request: web.Request) -> web.StreamResponse:
    from tests.fakes import gemini_fake

    if request.match_info["version"] not in ("v1", "v1beta1"):
        return web.Response(status=404, text="Not Found")
    body = json_or_none(await request.read())
    fake.requests.append(gemini_fake.Recorded(request.path_qs, dict(request.headers), body))
    model, _, method = request.match_info["call"].partition(":")
    try:
        fake._authenticate(request, vertex=True)
        if method not in ("rawPredict", "streamRawPredict"):
            raise gemini_fake.Refusal(404, f"Method {method!r} not found.")
    except gemini_fake.Refusal as r:
        return web.Response(status=r.status, body=gemini_fake.error_body(r.status, r.message, array=True),
                            content_type="application/json")
    try:
        if model == COUNT_MODEL:
            if method != "rawPredict":
                raise anthropic_rules.Refusal(404, f"{COUNT_MODEL} serves :rawPredict only")
            counted = validate_count(body)
            anthropic_fake.AnthropicFake._behavior(counted)
            return web.json_response({"input_tokens": count(counted)})
        message = validate(model, body, stream=method == "streamRawPredict")
        behavior = anthropic_fake.AnthropicFake._behavior(message)
    except anthropic_rules.Refusal as r:
        return web.Response(status=r.status, body=anthropic_rules.error_body(r.status, r.message),
                            headers={"Content-Type": "application/json", **r.headers})
    if behavior.get("slow"):
        await asyncio.sleep(behavior["slow"])
    return await _answer(fake, request, message, behavior)


def count(body: dict[str, Any]) -> int:
    """The Anthropic fake's count: the prompt's words and each tool's JSON in 8-byte pieces."""
    return anthropic_fake.prompt_tokens(body) + sum(
        len(anthropic_fake._arg_pieces(t)) for t in body.get("tools") or ())


async def _answer(fake: GeminiFake, request: web.Request, body: dict[str, Any],
                  behavior: dict[str, Any]) -> web.StreamResponse:
    content, stop = anthropic_fake.answer(body, anthropic_fake._Ids(fake))  # type: ignore[arg-type]
    message = {"id": fake._id("msg_vrtx_"), "type": "message", "role": "assistant",
               "model": body["model"], "content": content, "stop_reason": stop,
               "stop_sequence": None,
               "usage": anthropic_fake.usage(body, content, write=bool(behavior.get("cache-write")))}
    if not body.get("stream"):
        return web.Response(body=orjson.dumps(message), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    events = anthropic_fake.stream_events(message, error_event=bool(behavior.get("error-event")))
    if behavior.get("error-first"):  # overloaded as soon as the stream began
        events = [*events[:2], anthropic_fake._event("error", {"error": {
            "type": "overloaded_error", "message": "Overloaded"}})]
    if behavior.get("abort-mid-stream"):
        await response.write(b"".join(events[:3]))
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write(b"".join(events))
    await response.write_eof()
    return response
