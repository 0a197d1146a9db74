"""OpenAI's Responses API requests (`POST /v1/responses`) as Chat Completions: pure functions of
JSON, no I/O. The request's input items become chat messages, every field carried or refused by
name; the answer is translated back by responses_answer.py.

Stored responses: `store` (true unless the request says false, as at OpenAI, while the gateway
stores responses; `responses.store` in switchboard.yaml) and `previous_response_id` (the stored
chain's input and output items put before this request's input, its instructions not carried
over, as OpenAI documents). With storing off, `store: true` and `previous_response_id` are a 400
naming them: nothing would keep the response, or find the one named. `conversation` is refused.
"""

from __future__ import annotations

from typing import Any

from switchboard_common.errors import InvalidRequest

from switchboard_router.inbound import call_ids

_REFUSED = {
    # Decided: refused, not accepted. A conversation id names an object of OpenAI's
    # Conversations API, which this gateway does not serve, so none could be found or added to.
    "conversation": "OpenAI's Conversations API is not served by this gateway, so no "
                    "conversation can be continued; continue a stored response with "
                    "'previous_response_id', or send the whole conversation in 'input'",
    "prompt": "stored prompts are not supported through this gateway",
    "top_logprobs": "logprobs are not translated to the Responses API yet",
    "max_tool_calls": "max_tool_calls is not enforced by this gateway",
    "prompt_cache_key": "prompt_cache_key is not forwarded by this gateway",
    "prompt_cache_retention": "prompt_cache_retention is not forwarded by this gateway",
    "safety_identifier": "safety_identifier is not forwarded by this gateway; use 'user'",
    "context_management": "context management is not supported through this gateway",
}
_KNOWN = {"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
          "tool_choice", "parallel_tool_calls", "text", "reasoning", "user", "metadata", "store",
          "previous_response_id", "stream", "stream_options", "include", "truncation", "background", "service_tier"}


def _refuse(name: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{name}' is not supported: {why}.", param=name, code="unsupported_parameter")


# --- request -------------------------------------------------------------------------------------

def to_chat(body: dict[str, Any], *, storing: bool = False) -> dict[str, Any]:
    """The Chat Completions body for a Responses body (without the history a
    previous_response_id names: `continued` adds it). `storing`: the gateway stores responses."""
    for name, value in body.items():
        if name in _REFUSED and value is not None:
            raise _refuse(name, _REFUSED[name])
        if name not in _KNOWN and name not in _REFUSED:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    _refuse_unsupported(body)
    _check_storage(body, storing)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model",
                             code="missing_required_parameter")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("'instructions' must be a string.", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages += input_messages(input_items(body.get("input")))
    chat: dict[str, Any] = {"model": model, "messages": messages}
    for name, to in (("max_output_tokens", "max_completion_tokens"), ("temperature", "temperature"),
                     ("top_p", "top_p"), ("parallel_tool_calls", "parallel_tool_calls"),
                     ("user", "user"), ("service_tier", "service_tier")):
        if body.get(name) is not None:
            chat[to] = body[name]
    if body.get("tools"):
        if not isinstance(body["tools"], list):
            raise InvalidRequest("'tools' must be a list.", param="tools")
        chat["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    text = body.get("text")
    if text is not None:
        fmt = _response_format(text)
        if fmt is not None:
            chat["response_format"] = fmt
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict) or set(reasoning) - {"effort", "summary", "generate_summary"}:
            raise InvalidRequest("'reasoning' takes effort only.", param="reasoning")
        for name in ("summary", "generate_summary"):
            if reasoning.get(name) is not None:
                raise _refuse(f"reasoning.{name}", "reasoning summaries are not translated from "
                                                   "Chat Completions")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # response.completed carries usage
    return chat


def _check_storage(body: dict[str, Any], storing: bool) -> None:
    store, previous = body.get("store"), body.get("previous_response_id")
    if store is not None and not isinstance(store, bool):
        raise InvalidRequest("'store' must be a boolean.", param="store", code="invalid_type")
    if previous is not None and not isinstance(previous, str):
        raise InvalidRequest("'previous_response_id' must be a string.",
                             param="previous_response_id", code="invalid_type")
    if storing:
        return
    off = ("this gateway is configured not to store responses (responses.store: false in "
           "switchboard.yaml); send the whole conversation in 'input'")
    if store is True:
        raise _refuse("store", off)
    if previous is not None:
        raise _refuse("previous_response_id", off)


def stores(body: dict[str, Any], storing: bool) -> bool:
    """Whether this response is stored: OpenAI's default is true."""
    return storing and body.get("store") is not False


def input_items(value: Any) -> list[Any]:
    """The request's input as a list of items, as stored: a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise InvalidRequest("Missing required parameter: 'input' (a string or a list of items).",
                             param="input", code="missing_required_parameter")
    return value


def continued(chat: dict[str, Any], body: dict[str, Any], history: list[Any]) -> dict[str, Any]:
    """The chat body with a stored chain's items (input and output, oldest first) as the
    conversation before this request's input, after this request's instructions."""
    at = 1 if body.get("instructions") is not None else 0
    messages = chat["messages"]
    return {**chat, "messages": [*messages[:at], *input_messages(history), *messages[at:]]}


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if body.get("background") is True:
        raise _refuse("background", "background responses are not supported through this gateway")
    if body.get("include"):
        raise _refuse("include", "no extra output data can be included through this gateway")
    if body.get("truncation") not in (None, "disabled"):
        raise _refuse("truncation", "only 'disabled' is supported")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict) or set(options) - {"include_obfuscation"}:
            raise InvalidRequest("'stream_options' takes include_obfuscation only.", param="stream_options")
        if options.get("include_obfuscation") is True:
            raise _refuse("stream_options.include_obfuscation", "stream obfuscation is not added "
                                                                "by this gateway")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("'metadata' must be an object.", param="metadata")


def input_messages(value: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        at = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{at}' must be an object.", param=at)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, at))
        elif kind == "function_call":
            for name in ("call_id", "name", "arguments"):
                if not isinstance(item.get(name), str):
                    raise InvalidRequest(f"Missing required parameter: '{at}.{name}'.", param=f"{at}.{name}")
            call_id, extra = call_ids.incoming(item["call_id"])
            call = {"id": call_id, "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            if extra is not None:
                call["extra_content"] = extra
            if out and out[-1]["role"] == "assistant" and "tool_calls" in out[-1]:
                out[-1]["tool_calls"].append(call)
            elif out and out[-1]["role"] == "assistant" and out[-1].get("content") is not None:
                out[-1]["tool_calls"] = [call]
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = "".join(_text_part(p, f"{at}.output[{j}]", ("input_text",))
                                 for j, p in enumerate(output))
            if not isinstance(item.get("call_id"), str) or not isinstance(output, str):
                raise InvalidRequest(f"'{at}' needs call_id and a text output.", param=at)
            out.append({"role": "tool", "tool_call_id": call_ids.call_id_only(item["call_id"]),
                        "content": output})
        else:
            raise InvalidRequest(f"Input items of type '{kind}' are not supported through this "
                                 "gateway (message, function_call and function_call_output are).",
                                 param=f"{at}.type")
    return out


def _text_part(part: Any, at: str, kinds: tuple[str, ...]) -> str:
    if not isinstance(part, dict) or part.get("type") not in kinds or not isinstance(part.get("text"), str):
        raise InvalidRequest(f"'{at}' must be a text part ({', '.join(kinds)}).", param=at)
    return part["text"]


def _message(item: dict[str, Any], at: str) -> dict[str, Any]:
    extra = set(item) - {"type", "role", "content", "id", "status"}
    if extra:
        raise InvalidRequest(f"Unknown parameter: '{at}.{sorted(extra)[0]}'.", param=f"{at}.{sorted(extra)[0]}")
    role, content = item.get("role"), item.get("content")
    if role not in ("user", "system", "developer", "assistant"):
        raise InvalidRequest(f"'{at}.role' must be user, system, developer or assistant.", param=f"{at}.role")
    role = "system" if role == "developer" else role  # every chat provider reads system
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"'{at}.content' must be a string or a list of parts.", param=f"{at}.content")
    if role == "assistant":
        texts = [_text_part(p, f"{at}.content[{j}]", ("output_text",)) for j, p in enumerate(content)]
        return {"role": "assistant", "content": "".join(texts)}
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{at}.content[{j}]"
        if isinstance(part, dict) and part.get("type") == "input_image":
            if not isinstance(part.get("image_url"), str) or part.get("file_id"):
                raise InvalidRequest(f"'{where}' needs an image_url (file ids are not supported).",
                                     param=where)
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") not in (None, "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": _text_part(part, where, ("input_text",))})
    return {"role": role, "content": parts}


def _tool(tool: Any, at: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise InvalidRequest(f"'{at}': only function tools can be translated; built-in tools are "
                             "not supported through this gateway.", param=at)
    extra = set(tool) - {"type", "name", "description", "parameters", "strict"}
    if extra or not isinstance(tool.get("name"), str):
        raise InvalidRequest(f"'{at}' must be a function tool with a name.", param=at)
    function: dict[str, Any] = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest("'tool_choice' must be auto, none, required or a function.", param="tool_choice")


def _response_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict) or set(text) - {"format", "verbosity"}:
        raise InvalidRequest("'text' takes format only.", param="text")
    if text.get("verbosity") is not None:
        raise _refuse("text.verbosity", "verbosity is not translated to Chat Completions")
    fmt = text.get("format")
    if fmt is None or fmt == {"type": "text"}:
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest("'text.format' must be text, json_object or json_schema.", param="text.format")
