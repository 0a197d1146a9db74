"""Bedrock Converse's wire, as the fake speaks it: request validation against botocore's own
`bedrock-runtime` service model plus the rules the model does not encode, SigV4 verification by
botocore's signer, the answers' JSON shapes and the application/vnd.amazon.eventstream frames.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from typing import Any

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

SERVICE = ServiceModel(Loader().load_service_model("bedrock-runtime", "service-2"),
                       service_name="bedrock-runtime")
_WORD = re.compile(r"\s*\S+")
_DOCUMENT_NAME = re.compile(r"(?:[A-Za-z0-9()\[\]-]| (?! ))+")
THOUGHT = "Thinking about it."
_SAMPLE = {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}
# Converse's exceptions and their HTTP statuses, from the service model itself.
ERRORS = {name: SERVICE.shape_for(name).metadata["error"]["httpStatusCode"]
          for name in ("ValidationException", "AccessDeniedException", "ResourceNotFoundException",
                       "ModelTimeoutException", "ModelErrorException", "ThrottlingException",
                       "ModelNotReadyException", "InternalServerException", "ServiceUnavailableException")}


class Refusal(Exception):
    def __init__(self, error_type: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type, self.message = error_type, message
        self.status = status if status is not None else ERRORS.get(error_type, 400)


# --- validation -----------------------------------------------------------------------------

def validate(operation: str, model_id: str, body: Any) -> None:
    """botocore's ParamValidator on the operation's input shape (unknown members refused), then
    Bedrock's semantic rules; raises Refusal(ValidationException)."""
    validate_input(operation, model_id, body)
    _check_semantics(body)
    _check_thinking(model_id, body)


def validate_input(operation: str, model_id: str, body: Any) -> None:
    """botocore's ParamValidator on the operation's input shape; raises Refusal."""
    if not isinstance(body, dict):
        raise Refusal("ValidationException", "The request body is not a JSON object.")
    report = ParamValidator().validate({**body, "modelId": model_id},
                                       SERVICE.operation_model(operation).input_shape)
    if report.has_errors():
        raise Refusal("ValidationException", report.generate_report())


def _check_thinking(model_id: str, body: dict[str, Any]) -> None:
    """Claude's extended thinking through additionalModelRequestFields, as Anthropic's API checks it."""
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if thinking is None:
        return
    if ".anthropic." not in f".{model_id}" or not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        raise Refusal("ValidationException", "additionalModelRequestFields.thinking: an enabled thinking "
                                             "config for Anthropic models only")
    budget, limit = thinking.get("budget_tokens"), (body.get("inferenceConfig") or {}).get("maxTokens")
    if not isinstance(budget, int) or budget < 1024 or not isinstance(limit, int) or budget >= limit:
        raise Refusal("ValidationException", "thinking.budget_tokens: at least 1024 and less than max_tokens")
    if set((body.get("toolConfig") or {}).get("toolChoice") or {}) & {"any", "tool"}:
        raise Refusal("ValidationException", "Thinking may not be enabled when tool_choice forces tool use.")


def _check_documents(i: int, content: list[dict[str, Any]]) -> None:
    """Bedrock's DocumentBlock rules: a fitting, unique name, valid bytes, a text block beside."""
    names = [b["document"]["name"] for b in content if "document" in b]
    for block in content:
        if "document" in block:
            _check_base64(block["document"]["source"].get("bytes"), f"messages.{i}.document")
    if not names:
        return
    if not all(_DOCUMENT_NAME.fullmatch(n) for n in names) or len(set(names)) != len(names):
        raise Refusal("ValidationException", f"messages.{i}: document names may hold only letters, digits, "
                                             "single spaces, hyphens, parentheses and square brackets, "
                                             "and must differ.")
    if not any("text" in b for b in content):
        raise Refusal("ValidationException", f"messages.{i}: a message with documents needs a text block.")


def _check_semantics(body: dict[str, Any]) -> None:
    messages = body.get("messages") or []
    if not messages or messages[0]["role"] != "user":
        raise Refusal("ValidationException", "A conversation must start with a user message. "
                                             "Try again with a conversation that starts with a user message.")
    tool_names = {t["toolSpec"]["name"] for t in (body.get("toolConfig") or {}).get("tools") or ()
                  if "toolSpec" in t}
    pending: set[str] = set()
    uses_tools = False
    for i, m in enumerate(messages):
        if i and m["role"] == messages[i - 1]["role"]:
            raise Refusal("ValidationException", "A conversation must alternate between user and "
                                                 "assistant roles.")
        if not m["content"]:
            raise Refusal("ValidationException", f"messages.{i}.content: the content field is empty.")
        for block in m["content"]:
            if "text" in block and not block["text"].strip():
                raise Refusal("ValidationException", "The text field in the ContentBlock object at "
                                                     f"messages.{i}.content is blank.")
            if "image" in block:
                _check_base64(block["image"]["source"].get("bytes"), f"messages.{i}.image")
            if "toolUse" in block or "toolResult" in block:
                uses_tools = True
        _check_documents(i, m["content"])
        for block in m["content"]:
            if "toolUse" in block and block["toolUse"]["name"] not in tool_names:
                raise Refusal("ValidationException", f"messages.{i}: toolUse {block['toolUse']['name']!r} "
                                                     "names a tool that toolConfig does not define.")
        results = [b["toolResult"]["toolUseId"] for b in m["content"] if "toolResult" in b]
        if pending or results:
            if set(results) != pending or len(results) != len(set(results)):
                raise Refusal("ValidationException", "Expected toolResult blocks at "
                                                     f"messages.{i}.content for the toolUse ids of the "
                                                     "previous turn, all in one message.")
            pending = set()
        if m["role"] == "assistant":
            pending = {b["toolUse"]["toolUseId"] for b in m["content"] if "toolUse" in b}
    if uses_tools and "toolConfig" not in body:
        raise Refusal("ValidationException", "The toolConfig field must be defined when using "
                                             "toolUse and toolResult content blocks.")
    for block in body.get("system") or ():
        if "text" in block and not block["text"].strip():
            raise Refusal("ValidationException", "The text field in the system block is blank.")
    forced = ((body.get("toolConfig") or {}).get("toolChoice") or {}).get("tool")
    if forced and forced["name"] not in tool_names:
        raise Refusal("ValidationException", "toolChoice.tool names a tool that toolConfig does not define.")


def _check_base64(data: Any, where: str) -> None:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Refusal("ValidationException", f"{where}: the bytes are not valid base64.") from None


# --- embeddings (InvokeModel) ---------------------------------------------------------------

TITAN = {"inputText": str, "dimensions": int, "normalize": bool, "embeddingTypes": list}
COHERE = {"texts": list, "input_type": str, "truncate": str, "embedding_types": list}
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


def embed(model_id: str, raw: bytes, content_type: str, accept: str | None) -> dict[str, Any]:
    """InvokeModel's input shape by botocore's validator, the model's body by its documented keys,
    then an answer in the model's own shape."""
    params: dict[str, Any] = {"modelId": model_id, "body": raw, "contentType": content_type}
    if accept is not None:
        params["accept"] = accept
    report = ParamValidator().validate(params, SERVICE.operation_model("InvokeModel").input_shape)
    if report.has_errors():
        raise Refusal("ValidationException", report.generate_report())
    try:
        body = json.loads(raw)
    except ValueError:
        raise Refusal("ValidationException", "Malformed input request, please reformat your input "
                                             "and try again.") from None
    schema = TITAN if model_id.startswith("amazon.titan-embed-text") else \
        COHERE if model_id.startswith("cohere.embed") else None
    if schema is None:
        raise Refusal("ValidationException", f"The provided model identifier is invalid: {model_id}", 400)
    if not isinstance(body, dict) or any(k not in schema or not isinstance(v, schema[k]) for k, v in body.items()):
        raise Refusal("ValidationException", f"Malformed input request: extraneous or mistyped keys in {sorted(body)}")
    if schema is TITAN:
        size = body.get("dimensions", 1024 if "v2" in model_id else 1536)
        if "inputText" not in body or not body["inputText"] or size not in (256, 512, 1024, 1536) or \
                ("v2" not in model_id and "dimensions" in body):
            raise Refusal("ValidationException", "Malformed input request: inputText is required; "
                                                 "dimensions must be 256, 512 or 1024 (V2 only).")
        return {"embedding": _vector(body["inputText"], size),
                "inputTextTokenCount": len(body["inputText"].split())}
    texts = body.get("texts")
    if not texts or len(texts) > 96 or not all(isinstance(t, str) for t in texts) or \
            body.get("input_type") not in COHERE_INPUT_TYPES:
        raise Refusal("ValidationException", "Malformed input request: texts (1 to 96 strings) and "
                                             "input_type are required.")
    return {"id": "fake-embed", "embeddings": [_vector(t, 1024) for t in texts],
            "response_type": "embeddings_floats", "texts": texts}


def _vector(text: str, size: int) -> list[float]:
    seed = sum(text.encode()) % 97
    return [((seed + i) % 17) / 16 - 0.5 for i in range(size)]


# --- SigV4 ----------------------------------------------------------------------------------

def verify_sigv4(url: str, headers: dict[str, str], body: bytes, secrets_by_key: dict[str, str],
                 region: str) -> str | None:
    """None when the signature is botocore's for these credentials, else why not."""
    h = {k.lower(): v for k, v in headers.items()}
    auth = h.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'."
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(",") if "=" in p)
    try:
        access_key, date, scope_region, service, _ = parts["Credential"].split("/")
        signed = parts["SignedHeaders"].split(";")
    except (KeyError, ValueError):
        return "The Authorization header is malformed."
    if access_key not in secrets_by_key:
        return "The security token included in the request is invalid."
    if service != "bedrock" or scope_region != region:
        return f"Credential should be scoped to a valid region and service 'bedrock' ({scope_region}/{service})."
    if not {"host", "x-amz-date"} <= set(signed) or h.get("x-amz-date", "")[:8] != date:
        return "The request must sign host and x-amz-date."
    request = AWSRequest(method="POST", url=url, data=body, headers={k: h[k] for k in signed if k in h})
    request.context["timestamp"] = h["x-amz-date"]
    signer = botocore.auth.SigV4Auth(Credentials(access_key, secrets_by_key[access_key],
                                                 h.get("x-amz-security-token")), service, region)
    want = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if want != parts.get("Signature"):
        return ("The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.")
    return None


# --- answers --------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    return _WORD.findall(text) or [text]


def _texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"])
        elif "toolResult" in b:
            out += _texts(b["toolResult"]["content"])
    return out


def prompt_words(body: dict[str, Any]) -> int:
    texts = _texts(body.get("system") or []) + [t for m in body["messages"] for t in _texts(m["content"])]
    return sum(len(t.split()) for t in texts)


def sample(schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: sample(v) for k, v in (schema.get("properties") or {}).items()}
    return _SAMPLE.get(kind, "fake") if isinstance(kind, str) else "fake"


def answer(body: dict[str, Any], new_id: Any, marker: re.Pattern[str]) -> tuple[list[dict[str, Any]], str]:
    """(content blocks, stopReason) for a valid request, as the scenario suite expects them."""
    last = body["messages"][-1]["content"]
    results = [t for b in last if "toolResult" in b for t in _texts(b["toolResult"]["content"])]
    text = " ".join(b["text"] for b in last if "text" in b)
    images = sum(1 for b in last if "image" in b)
    documents = sum(1 for b in last if "document" in b)
    thought: list[dict[str, Any]] = []
    if (body.get("additionalModelRequestFields") or {}).get("thinking"):
        thought = [{"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": "c2lnLWZha2U="}}}]
    config = body.get("toolConfig") or {}
    tools = [t["toolSpec"] for t in config.get("tools") or () if "toolSpec" in t]
    choice = config.get("toolChoice") or {}
    if "tool" in choice:
        chosen = [t for t in tools if t["name"] == choice["tool"]["name"]]
    elif tools and not results and ("call_tool" in text or "any" in choice):
        chosen = tools if "call_tools" in text else tools[:1]
    else:
        chosen = []
    if chosen:
        return thought + [{"toolUse": {"toolUseId": new_id(), "name": t["name"],
                                       "input": sample(t["inputSchema"]["json"])}} for t in chosen], "tool_use"
    reply = ("Echo: " + " | ".join(results)) if results else \
        "Echo: " + marker.sub("", text).strip() + (f" [{images} image(s)]" if images else "") + \
        (f" [{documents} document(s)]" if documents else "")
    pieces = words(reply)
    stop = "end_turn"
    limit = (body.get("inferenceConfig") or {}).get("maxTokens")
    if limit is not None and len(pieces) > limit:
        pieces, stop = pieces[:limit], "max_tokens"
    for s in (body.get("inferenceConfig") or {}).get("stopSequences") or ():
        joined = "".join(pieces)
        if s in joined:
            pieces, stop = [joined[:joined.index(s)]], "stop_sequence"
            break
    return [*thought, {"text": "".join(pieces)}], stop


def arg_pieces(value: Any, dumps: Any) -> list[str]:
    raw = dumps(value).decode()
    return [raw[i:i + 8] for i in range(0, len(raw), 8)] or [""]


def usage(body: dict[str, Any], content: list[dict[str, Any]], dumps: Any) -> dict[str, int]:
    """Words of the prompt (half read from the cache when a cachePoint is set), one output token
    per streamed piece; Converse's inputTokens leave the cache's tokens out."""
    total = prompt_words(body)
    cached = total // 2 if b"cachePoint" in dumps(body) else 0
    output = sum(len(words(b["text"])) for b in content if "text" in b) + \
        sum(len(words(THOUGHT)) for b in content if "reasoningContent" in b) + sum(
        len(arg_pieces(b["toolUse"]["input"], dumps)) for b in content if "toolUse" in b)
    return {"inputTokens": total - cached, "outputTokens": output, "totalTokens": total + output,
            "cacheReadInputTokens": cached, "cacheWriteInputTokens": 0}


# --- event-stream frames ----------------------------------------------------------------------

def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v  # 7: string


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One message: total and headers lengths, the prelude's CRC32, headers, payload, the CRC32
    of everything before it (https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html)."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack("!II", 12 + len(head) + len(payload) + 4, len(head))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + head + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(kind: str, payload: bytes) -> bytes:
    return frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                 payload)


def exception(kind: str, payload: bytes) -> bytes:
    return frame({":exception-type": kind, ":content-type": "application/json",
                  ":message-type": "exception"}, payload)


def stream_events(content: list[dict[str, Any]], stop: str, use: dict[str, int],
                  dumps: Any) -> list[bytes]:
    """ConverseStream's events for a whole answer: text in word pieces (no contentBlockStart, as
    Bedrock sends none for text), tool calls as a start with id and name then input fragments."""
    out = [event("messageStart", dumps({"role": "assistant"}))]
    for index, block in enumerate(content):
        if "text" in block:
            out += [event("contentBlockDelta", dumps({"contentBlockIndex": index, "delta": {"text": piece}}))
                    for piece in words(block["text"])]
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]["reasoningText"]
            out += [event("contentBlockDelta", dumps({"contentBlockIndex": index, "delta": {
                "reasoningContent": {"text": piece}}})) for piece in words(reasoning["text"])]
            out.append(event("contentBlockDelta", dumps({"contentBlockIndex": index, "delta": {
                "reasoningContent": {"signature": reasoning["signature"]}}})))
        else:
            tool = block["toolUse"]
            out.append(event("contentBlockStart", dumps({"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}})))
            out += [event("contentBlockDelta", dumps({"contentBlockIndex": index,
                                                      "delta": {"toolUse": {"input": piece}}}))
                    for piece in arg_pieces(tool["input"], dumps)]
        out.append(event("contentBlockStop", dumps({"contentBlockIndex": index})))
    out.append(event("messageStop", dumps({"stopReason": stop})))
    out.append(event("metadata", dumps({"usage": use, "metrics": {"latencyMs": 12}})))
    return out
