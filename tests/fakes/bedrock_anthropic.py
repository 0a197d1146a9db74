"""The fake Bedrock's Anthropic models through InvokeModel and InvokeModelWithResponseStream:
Anthropic's Messages body (the model in the path, `anthropic_version: bedrock-2023-05-31`,
betas as `anthropic_beta`), checked by the Anthropic fake's rules (the SDK's own types, extra
fields refused), answered as the Anthropic fake answers, streamed as Anthropic's events each in
an event-stream `chunk` ({"bytes": base64 of the event's JSON}), the last with Bedrock's
invocation metrics. Bedrock takes an image's bytes only: a URL source is a ValidationException.
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import orjson

from tests.fakes import anthropic_fake, anthropic_rules
from tests.fakes import bedrock_wire as wire
from tests.fakes.bedrock_wire import Refusal

VERSION = "bedrock-2023-05-31"


def is_anthropic(model_id: str) -> bool:
    return model_id.startswith("anthropic.") or ".anthropic." in model_id


def validate(model_id: str, body: Any) -> dict[str, Any]:
    """The body as the Anthropic fake checks it (with the model from the path); raises Refusal."""
    if not isinstance(body, dict) or body.get("anthropic_version") != VERSION:
        raise Refusal("ValidationException", f"anthropic_version: must be {VERSION}")
    betas = body.get("anthropic_beta", [])
    if not isinstance(betas, list) or not all(isinstance(b, str) for b in betas):
        raise Refusal("ValidationException", "anthropic_beta: a list of strings")
    for name in ("model", "stream"):
        if name in body:
            raise Refusal("ValidationException", f"extraneous key [{name}] is not permitted")
    message = {k: v for k, v in body.items() if k not in ("anthropic_version", "anthropic_beta")}
    message["model"] = model_id
    for m in message.get("messages") or ():
        content = m.get("content") if isinstance(m, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and (block.get("source") or {}).get("type") == "url":
                raise Refusal("ValidationException", "URL image sources are not supported; send "
                                                     "the image's bytes (base64)")
    try:
        anthropic_rules.validate(message)
    except anthropic_rules.Refusal as r:
        raise Refusal("ValidationException", r.message) from None
    return message


def count(model_id: str, body: Any) -> int:
    """CountTokens: its input by botocore's validator, the InvokeModel body inside it decoded and
    checked as InvokeModel checks it, counted as the Anthropic fake counts; raises Refusal."""
    wire.validate_input("CountTokens", model_id, body)
    if model_id.split(".", 1)[0] in ("us", "eu", "apac", "global"):
        raise Refusal("ValidationException", "The provided model identifier is invalid: CountTokens takes a "
                                             "foundation model id, not an inference profile.")
    if not is_anthropic(model_id) or "converse" in body["input"]:
        raise Refusal("ValidationException", "This fake counts InvokeModel bodies of Anthropic models only.")
    try:
        invoke = orjson.loads(base64.b64decode(body["input"]["invokeModel"]["body"], validate=True))
    except (ValueError, orjson.JSONDecodeError):
        raise Refusal("ValidationException", "input.invokeModel.body: not base64 of a JSON body") from None
    message = validate(model_id, invoke)
    return anthropic_fake.prompt_tokens(message) + sum(
        len(anthropic_fake._arg_pieces(t)) for t in message.get("tools") or ())


def message(body: dict[str, Any], ids: Iterable[str], message_id: str) -> dict[str, Any]:
    content, stop = anthropic_fake.answer(body, ids)
    return {"id": message_id, "type": "message", "role": "assistant", "model": body["model"],
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": anthropic_fake.usage(body, content)}


def chunks(answer: dict[str, Any]) -> list[bytes]:
    """Anthropic's events as Bedrock's chunk frames, message_stop with the invocation metrics."""
    out = []
    for event in anthropic_fake.stream_events(answer, error_event=False):
        data = orjson.loads(event.split(b"\ndata: ", 1)[1])
        if data["type"] == "message_stop":
            data["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": answer["usage"]["input_tokens"],
                "outputTokenCount": answer["usage"]["output_tokens"], "invocationLatency": 12,
                "firstByteLatency": 5}
        out.append(wire.event("chunk", orjson.dumps({"bytes": base64.b64encode(orjson.dumps(data)).decode()})))
    return out
