"""Chat completions as Gemini's generateContent request body: pure functions, no I/O.

Translated field by field; what Gemini (or the /v1 API) cannot express is refused with a 400
naming it. Answers, errors and streams are in codecs/gemini.py.
https://ai.google.dev/api/generate-content
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson
from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.content_parts import data_uri, file_data
from switchboard_router.codecs.base import message_texts, refuse_foreign_fields
from switchboard_router.codecs.openai import EXTENSION_FIELDS
from switchboard_router.providers.base import Call

DEFAULT_VERSION = "v1beta"
VERSIONS = ("v1beta", "v1")
# What the /v1 API's published types (google.ai.generativelanguage_v1) lack: sent there, Gemini
# would refuse the field, so the gateway says so first.
V1_LACKS = {"systemInstruction": "messages (system)", "tools": "tools", "toolConfig": "tool_choice",
            "responseMimeType": "response_format", "responseJsonSchema": "response_format",
            "thinkingConfig": "reasoning_effort"}
# Synthetic call ids carry this prefix, so that only Gemini's own ids go back to it.
CALL_ID_PREFIX = "call_sb"
# reasoning_effort as a thinking budget (https://ai.google.dev/gemini-api/docs/thinking);
# "none" turns thinking off where the model allows it.
THINKING_BUDGETS = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576}
MESSAGE_FIELDS = {
    "system": ("role", "content"), "developer": ("role", "content"), "user": ("role", "content"),
    "assistant": ("role", "content", "tool_calls", "reasoning_content"),
    "tool": ("role", "content", "tool_call_id"),
}
TRANSLATED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "stop",
    "temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "n",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort",
    *EXTENSION_FIELDS,
})


def translate_request(call: Call, version: str = DEFAULT_VERSION) -> dict[str, Any]:
    body = call.body
    for name, value in body.items():
        if name not in TRANSLATED and value is not None and value is not False:
            raise InvalidRequest(f"'{name}' is not supported by this model's provider (Gemini "
                                 "API); leave it out.", param=name, code="unsupported_parameter")
    if body.get("n") not in (None, 1):
        raise InvalidRequest("Through the gateway Gemini models return one choice: 'n' must be 1.",
                             param="n", code="unsupported_parameter")
    if body.get("parallel_tool_calls") is False:
        raise InvalidRequest("Gemini cannot be told to call one tool at a time: leave out "
                             "parallel_tool_calls.", param="parallel_tool_calls", code="unsupported_value")
    system, contents = translate_messages(body.get("messages") or [])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    config: dict[str, Any] = {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int):
        config["maxOutputTokens"] = limit
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                         ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_output_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_BUDGETS:
            raise InvalidRequest(f"reasoning_effort {effort!r} has no Gemini equivalent (use none, "
                                 "low, medium or high).", param="reasoning_effort", code="unsupported_value")
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort], "includeThoughts":
                                    THINKING_BUDGETS[effort] > 0}
    if config:
        out["generationConfig"] = config
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"functionDeclarations": [_function(t, i) for i, t in enumerate(tools)]}]
    strict = any(((t.get("function") or {}).get("strict")) for t in tools or ())
    choice = _tool_config(body.get("tool_choice"), strict)
    if choice is not None:
        out["toolConfig"] = choice
    if version == "v1":
        _refuse_what_v1_lacks(out)
    return out


def _refuse_what_v1_lacks(out: dict[str, Any]) -> None:
    present = set(out) | set(out.get("generationConfig") or ())
    for field, param in V1_LACKS.items():
        if field in present:
            raise InvalidRequest(f"Gemini's v1 API has no {field}, so {param} cannot be sent to this "
                                 "provider; configure it with api_version v1beta.",
                                 param=param.split()[0], code="unsupported_parameter")
    for content in out["contents"]:
        for part in content["parts"]:
            if "fileData" in part or "functionCall" in part or "functionResponse" in part:
                kind = next(iter(part))
                raise InvalidRequest(f"Gemini's v1 API takes no {kind} parts; configure this "
                                     "provider with api_version v1beta.", param="messages",
                                     code="unsupported_parameter")


def translate_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instruction parts, contents): roles `user` and `model`, consecutive turns of one
    role merged, so parallel tool results form one turn answering the calls before it."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool-call id -> function name, for the results
    for i, m in enumerate(messages):
        at = f"messages[{i}]"
        role = m.get("role")
        refuse_foreign_fields(m, MESSAGE_FIELDS, at, "Gemini")
        if role in ("system", "developer"):
            system += _text_parts(m.get("content"), f"{at}.content")
            continue
        if role == "user":
            kind, parts = "user", _user_parts(m.get("content"), f"{at}.content")
        elif role == "assistant":
            kind, parts = "model", _model_parts(m, at, names)
            if not parts:
                continue  # an empty assistant turn carries nothing Gemini could take
        elif role == "tool":
            kind, parts = "user", [_function_response(m, at, names)]
        else:
            raise InvalidRequest(f"Messages with role {role!r} cannot be sent to Gemini.",
                                 param=f"{at}.role", code="unsupported_value")
        if not parts:
            raise InvalidRequest("A user message needs some content for Gemini.",
                                 param=f"{at}.content", code="invalid_value")
        if contents and contents[-1]["role"] == kind:
            contents[-1]["parts"] += parts
        else:
            contents.append({"role": kind, "parts": parts})
    return system, contents


def _text_parts(content: Any, at: str) -> list[dict[str, Any]]:
    return [{"text": t} for t in message_texts(content, at, "Gemini")]


def _user_parts(content: Any, at: str) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return _text_parts(content, at)
    out: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            out += _text_parts([part], at)
        elif kind == "image_url":
            out.append(_image(part.get("image_url") or {}, f"{at}[{j}].image_url.url"))
        elif kind == "file":
            out.append(_file(part.get("file") or {}, f"{at}[{j}].file"))
        else:
            raise InvalidRequest(f"Content parts of type {kind!r} cannot be sent to Gemini.",
                                 param=f"{at}[{j}].type", code="unsupported_value")
    return out


def _inline(url: str, at: str) -> dict[str, Any]:
    media_type, data = data_uri(url, at)
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _image(image: dict[str, Any], at: str) -> dict[str, Any]:
    url = image.get("url") or ""
    if url.startswith("data:"):
        return _inline(url, at)
    if url.startswith(("http://", "https://")):
        # Gemini reads a URL as fileData, which needs its media type: from the name, or refused.
        media_type = mimetypes.guess_type(url.split("?", 1)[0])[0]
        if not media_type or not media_type.startswith("image/"):
            raise InvalidRequest("Gemini needs an image URL's media type, and this URL's name does not "
                                 "show it (.png, .jpg, .webp...); send the image as a base64 data URI.",
                                 param=at, code="unsupported_value")
        return {"fileData": {"mimeType": media_type, "fileUri": url}}
    raise InvalidRequest("An image must be an http(s) URL or a base64 data URI.", param=at,
                         code="invalid_value")


def _file(file: dict[str, Any], at: str) -> dict[str, Any]:
    media_type, data = file_data(file, at, "Gemini")
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _model_parts(m: dict[str, Any], at: str, names: dict[str, str]) -> list[dict[str, Any]]:
    parts = _text_parts(m.get("content"), f"{at}.content")
    for j, tool_call in enumerate(m.get("tool_calls") or ()):
        function = tool_call.get("function") or {}
        try:
            args = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = None
        if not isinstance(args, dict):
            raise InvalidRequest("A tool call's arguments must be a JSON object to send to Gemini.",
                                 param=f"{at}.tool_calls[{j}].function.arguments", code="invalid_value")
        call_id = tool_call.get("id")
        name = function.get("name")
        if isinstance(call_id, str) and isinstance(name, str):
            names[call_id] = name
        fc: dict[str, Any] = {"name": name, "args": args}
        if isinstance(call_id, str) and not call_id.startswith(CALL_ID_PREFIX):
            fc["id"] = call_id  # Gemini's own id: it matches the result to it
        part: dict[str, Any] = {"functionCall": fc}
        google = (tool_call.get("extra_content") or {}).get("google") or {}
        signature = google.get("thought_signature")
        if isinstance(signature, str) and signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(m: dict[str, Any], at: str, names: dict[str, str]) -> dict[str, Any]:
    call_id = m.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise InvalidRequest("A tool message must answer a tool call of an earlier assistant message "
                             "(Gemini matches results by the function's name).",
                             param=f"{at}.tool_call_id", code="invalid_value")
    content = m.get("content")
    text = content if isinstance(content, str) else "".join(
        p["text"] for p in _text_parts(content, f"{at}.content"))
    response: dict[str, Any] = {"name": name, "response": {"result": text}}
    if isinstance(call_id, str) and not call_id.startswith(CALL_ID_PREFIX):
        response["id"] = call_id
    return {"functionResponse": response}


def _function(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise InvalidRequest(f"Gemini takes function tools, not {tool.get('type')!r}.",
                             param=f"tools[{i}].type", code="unsupported_value")
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]  # JSON Schema as written
    return out


def _tool_config(choice: Any, strict: bool) -> dict[str, Any] | None:
    """OpenAI's tool_choice as Gemini's mode; strict functions make `auto` VALIDATED (calls
    checked against their schemas by constrained decoding, as ANY's always are)."""
    if choice in (None, "auto") and strict:
        return {"functionCallingConfig": {"mode": "VALIDATED"}}
    if choice is None:
        return None
    if choice in ("auto", "required", "none"):
        mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}[choice]
        return {"functionCallingConfig": {"mode": mode}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise InvalidRequest("Gemini takes tool_choice auto, required, none or a function.",
                         param="tool_choice", code="unsupported_value")


def _output_format(response_format: Any) -> dict[str, Any]:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in (None, "text"):
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema is required for Gemini.",
                                 param="response_format.json_schema.schema", code="invalid_value")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise InvalidRequest(f"Gemini has no {kind!r} output mode.", param="response_format.type",
                         code="unsupported_value")
