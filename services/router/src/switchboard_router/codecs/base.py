"""What every wire format's codec offers the remote provider: pure functions of bytes, no I/O.

A codec builds the provider's HTTP request for one call (headers included, computed per call so
that signed or token-based auth — SigV4, OAuth — fits), turns the provider's whole answer into
OpenAI's, relays its stream as OpenAI's `chat.completion.chunk` events, and maps its errors to
ours. `providers.remote.RemoteProvider` drives any codec through the shared upstream pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson
from switchboard_common.errors import ApiError, InvalidRequest, UpstreamError

from switchboard_router.domain import Endpoint, Tokens

if TYPE_CHECKING:
    from switchboard_router.completion import CompletionCounter
    from switchboard_router.providers.base import Call, Reply


class HttpRequest(NamedTuple):
    url: str
    headers: dict[str, str]  # Sensitive: holds the provider's credentials
    body: bytes


class StreamRelay(Protocol):
    """One provider stream, followed read by read (one object per stream: no shared state)."""

    usage: Tokens | None  # the provider's counts, once it reported them
    error: ApiError | None  # an error the provider reported inside the stream
    completion: CompletionCounter  # the completion so far, for counting when no usage comes

    def feed(self, read: bytes) -> bytes:
        """OpenAI SSE bytes to forward for this read of the provider's stream (maybe empty)."""

    def finish(self) -> bytes:
        """At the provider's clean end: what is left, ending with `data: [DONE]`."""

    def completion_tokens(self) -> int:
        """The provider's completion count once reported; until then counted from the text."""


class Codec(Protocol):
    endpoints: frozenset[Endpoint]  # what this provider can serve through this codec

    def request(self, call: Call) -> tuple[str, dict[str, str], bytes]:
        """The provider's HTTP request for one attempt: (url, headers, body), an HttpRequest or a
        plain tuple (the OpenAI path skips building one). Raises ApiError (a 400) for a request
        the provider's format cannot express, rather than dropping what it cannot carry."""

    def response(self, call: Call, body: bytes) -> Reply:
        """A whole 2xx answer as OpenAI's answer."""

    def relay(self, call: Call, count: Callable[[str], int]) -> StreamRelay:
        """A fresh relay for one stream; `count` counts the tokens of generated text."""

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        """A non-2xx answer as our error, with the right status, type and Retry-After."""


class Authorizing(Protocol):
    """A codec whose credentials need I/O (Vertex's OAuth tokens, Bedrock's AWS
    credentials resolved and refreshed off the event loop) also has this; RemoteProvider
    awaits it before each request() so that request() can read the credentials without I/O."""

    async def authorize(self) -> None:
        """Make the credentials valid (fetched, or refreshed near expiry); raises ApiError."""


class ProviderOverloaded(UpstreamError):
    """The provider says it is overloaded (Anthropic's 529): a 503 the client may retry, and a
    failure worth another deployment (it is an UpstreamError)."""

    http_status = 503
    error_type = "service_unavailable"
    default_code = "provider_overloaded"



def message_texts(content: Any, at: str, provider: str, *, keep_blank: bool = True) -> list[str]:
    """The texts of a message's content (a string, or text and refusal parts), empty ones left
    out (and whitespace-only ones, for providers that refuse them); any other part is a 400
    naming it, since only text can go where this is asked."""
    if isinstance(content, str) or content is None:
        texts = [content]
    else:
        texts = []
        for j, part in enumerate(content):
            kind = part.get("type")
            if kind not in ("text", "refusal"):
                raise InvalidRequest(f"Only text parts can go here for {provider}, not {kind!r}.",
                                     param=f"{at}[{j}].type", code="unsupported_value")
            texts.append(part.get("text") if kind == "text" else part.get("refusal"))
    return [t for t in texts if isinstance(t, str) and t and (keep_blank or t.strip())]


def refuse_foreign_fields(message: dict[str, Any], fields: dict[str, tuple[str, ...]], at: str,
                          provider: str) -> None:
    """A 400 naming the first field set on a message that the provider's turns of its role
    cannot carry (empty values are no content, so they pass)."""
    role = message.get("role")
    allowed = fields.get(role, ()) if isinstance(role, str) else ()
    for key, value in message.items():
        if key not in allowed and value not in (None, False, "", [], {}):
            raise InvalidRequest(f"'{key}' on a {role} message cannot be sent to {provider}; "
                                 "leave it out.", param=f"{at}.{key}", code="unsupported_parameter")


Blocks = list[dict[str, Any]]


def alternating_turns(messages: list[Any], *, provider: str, fields: dict[str, tuple[str, ...]],
                      system: Callable[[Any, str], Blocks], user: Callable[[Any, str], Blocks],
                      assistant: Callable[[dict[str, Any], str], Blocks],
                      tool: Callable[[dict[str, Any], str], dict[str, Any]],
                      is_result: Callable[[dict[str, Any]], bool], empty_user: str,
                      user_first: bool = False) -> tuple[Blocks, Blocks]:
    """Chat messages as the (system blocks, user/assistant turns) of a provider that takes
    alternating turns (Anthropic's Messages, Bedrock's Converse): consecutive turns of one role
    merged (parallel tool results become one user turn), tool results first in their turn, an
    empty assistant turn dropped, any other role or an empty user turn a 400 naming it."""
    system_blocks: Blocks = []
    turns: Blocks = []
    for i, m in enumerate(messages):
        at = f"messages[{i}]"
        role = m.get("role")
        refuse_foreign_fields(m, fields, at, provider)
        if role in ("system", "developer"):
            system_blocks += system(m.get("content"), f"{at}.content")
            continue
        if role == "user":
            blocks = user(m.get("content"), f"{at}.content")
        elif role == "assistant":
            blocks = assistant(m, at)
            if not blocks:
                continue  # an empty assistant turn carries nothing the provider could take
        elif role == "tool":
            role, blocks = "user", [tool(m, at)]
        else:
            raise InvalidRequest(f"Messages with role {role!r} cannot be sent to {provider}.",
                                 param=f"{at}.role", code="unsupported_value")
        if not blocks:
            raise InvalidRequest(empty_user, param=f"{at}.content", code="invalid_value")
        if user_first and not turns and role != "user":
            raise InvalidRequest(f"{provider} needs the conversation to open with a user message "
                                 "(after any system messages).", param=f"{at}.role", code="invalid_value")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool results open the turn that answers the tool calls
            content = turn["content"]
            turn["content"] = [b for b in content if is_result(b)] + \
                [b for b in content if not is_result(b)]
    return system_blocks, turns


def answer_object(data: bytes, what: str,
                  valid: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """A provider's whole answer as the JSON object it must be; else an UpstreamError saying
    "The provider returned <what>." (not JSON, not an object, or not `valid`)."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or (valid is not None and not valid(parsed)):
        raise UpstreamError(f"The provider returned {what}.", code="invalid_upstream_response")
    return parsed
