"""The fake OpenAI API's aiohttp application: routes, auth, recording, and acting out the hooks."""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from tests.fakes import openai_wire as wire
from tests.fakes.openai_answers import (
    DEFAULT_DIMENSIONS, chat_answer, completion_answers, embedding_inputs, embedding_vector,
    input_tokens, last_user_text,
)
from tests.fakes.openai_hooks import (
    BEHAVIOR_HEADER, CONTEXT_TOO_LONG, ERRORS, RETRY_HEADERS, Behavior, requested_behavior,
)
from tests.fakes.openai_validation import (
    InvalidRequest, check_chat, check_completion, check_embeddings,
)

_KEYS_URL = "https://platform.openai.com/account/api-keys"
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
    "username) if you're accessing the API from your browser and are prompted for a username. You "
    f"can obtain an API key from {_KEYS_URL}."
)
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
    "help center at help.openai.com.)"
)
JSON = "application/json"
EVENT_STREAM = "text/event-stream; charset=utf-8"


class RecordedRequest(NamedTuple):
    method: str
    path: str
    headers: CIMultiDictProxy[str]  # case-insensitive, as received
    json: Any  # None when the body was empty or not JSON


class _Refusal(Exception):
    """Ends a request early with an OpenAI error response, after `delay` seconds."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                 delay: float = 0.0):
        self.status, self.body, self.headers, self.delay = status, body, headers or {}, delay


class _Hang(Exception):
    """Ends a request only when the fake shuts down."""


class _Gone(Exception):
    """The client closed the connection before the answer was complete."""


TAGS_KEPT = 1000  # the log of tagged requests keeps this many, the oldest dropped first


class OpenAIApp:
    """The handlers and the state they share: accepted keys, recorded requests, id counters."""

    def __init__(self, api_keys: Iterable[str] | None = None, record: bool = True,
                 throttled_keys: Mapping[str, str] | None = None,
                 tokens_file: Path | None = None):
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        # OAuth access tokens in force, as the fake authorization server (oauth_fake) writes them:
        # `token expires_at` a line; accepted beside api_keys until they expire.
        self.tokens_file = tokens_file
        # key -> the Retry-After its 429 says: accepted keys whose organization is over its limit.
        self.throttled_keys = dict(throttled_keys or {})
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.closing = asyncio.Event()  # set on shutdown; wakes the requests told to hang
        self._run = secrets.token_hex(4)
        self._serial = itertools.count(1)
        self._models = wire.models_list()
        # tag -> how that request ended: started_at/ended_at (Unix seconds), outcome, bytes_sent
        self.tagged: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def application(self) -> web.Application:
        # OpenAI takes bodies far above aiohttp's 1 MiB default (images as data URLs).
        app = web.Application(middlewares=[self._refusals], client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        # Not OpenAI's: how a request sent with the tag-<name> hook ended, for tests.
        app.router.add_get("/_fake/requests/{tag}", self._tagged_request)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    @web.middleware
    async def _refusals(self, request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidRequest as e:
            body = wire.error_body(e.message, "invalid_request_error", e.param, e.code)
            return self._response(body, status=400)
        except _Refusal as r:
            if r.delay:
                await asyncio.sleep(r.delay)
            return self._response(r.body, status=r.status, extra=r.headers)
        except _Gone:
            return web.Response(status=499)  # nobody is left to read it
        except _Hang:
            await self.closing.wait()
            message, type_, code = ERRORS[503]
            return self._response(wire.error_body(message, type_, None, code), status=503)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        model, behavior = self._behavior(request, body, last_user_text(body.get("messages")))
        check_chat(body)
        answer = chat_answer(body, self._id("call_", 24), behavior.echo_all)
        args = (self._id("chatcmpl-", 29), int(time.time()), model, answer, body.get("n") or 1)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events: Iterable[bytes] = (
                wire.sized_chat_stream(*args[:4], include_usage, behavior.size) if behavior.size
                else wire.chat_stream(*args, include_usage))
            return await self._send_events(request, events, behavior)
        _no_size(behavior)
        return await self._send_json(request, wire.chat_completion(*args), behavior)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        prompt = body.get("prompt")
        model, behavior = self._behavior(request, body, prompt if isinstance(prompt, str) else "")
        check_completion(body)
        _no_size(behavior)
        args = (self._id("cmpl-", 29), int(time.time()), model, completion_answers(body),
                body.get("n") or 1)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = wire.text_completion_stream(*args, include_usage)
            return await self._send_events(request, events, behavior)
        return await self._send_json(request, wire.text_completion(*args), behavior)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        model, behavior = self._behavior(request, body, "")
        check_embeddings(body)
        _no_size(behavior)
        items = embedding_inputs(body)
        dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
        vectors = [embedding_vector(item, dimensions) for item in items]
        tokens = sum(input_tokens(item) for item in items)
        as_base64 = body.get("encoding_format") == "base64"
        payload = wire.embeddings(model, vectors, tokens, as_base64)
        return await self._send_json(request, payload, behavior)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        await self._admit(request, json_body=False)
        return self._response(self._models)

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        await self._admit(request, json_body=False)
        wanted = request.match_info["model"]
        for model in wire.MODELS:
            if model[0] == wanted:
                return self._response(orjson.dumps(wire.model_object(*model)))
        message, type_, code = ERRORS[404]
        raise _Refusal(404, wire.error_body(message.format(model=wanted), type_, "model", code))

    async def _tagged_request(self, request: web.Request) -> web.StreamResponse:
        seen = self.tagged.get(request.match_info["tag"])
        if seen is None:
            return self._response(wire.error_body("No request with this tag (yet).",
                                                  "invalid_request_error"), status=404)
        return self._response(orjson.dumps(seen))

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        message = f"Invalid URL ({request.method} {request.path})"
        return self._response(wire.error_body(message, "invalid_request_error"), status=404)

    async def _admit(self, request: web.Request, json_body: bool = True) -> Any:
        """Record the request, check its key, parse its JSON body: every endpoint's first steps."""
        raw = await request.read() if request.body_exists else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if self.record:
            seen = RecordedRequest(request.method, request.path, request.headers, body)
            self.requests.append(seen)
        self._authenticate(request.headers.get("Authorization", ""))
        if json_body and not isinstance(body, dict):
            raise _Refusal(400, wire.error_body(_BAD_JSON, "invalid_request_error"))
        return body

    def _authenticate(self, authorization: str) -> None:
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _Refusal(401, wire.error_body(_NO_KEY, "invalid_request_error"))
        accepted = key in self.api_keys if self.api_keys is not None else key.startswith("sk-")
        accepted = accepted or self._token_in_force(key)
        if not accepted:
            message = (f"Incorrect API key provided: {_masked(key)}. "
                       f"You can find your API key at {_KEYS_URL}.")
            raise _Refusal(401, wire.error_body(message, "invalid_request_error", None,
                                                "invalid_api_key"))
        if key in self.throttled_keys:
            message, type_, code = ERRORS[429]
            raise _Refusal(429, wire.error_body(message.format(model="gpt-4o-mini"), type_, None, code),
                           {**RETRY_HEADERS, "retry-after": self.throttled_keys[key]})

    def _token_in_force(self, key: str) -> bool:
        if self.tokens_file is None:
            return False
        try:
            lines = self.tokens_file.read_text().splitlines()
        except FileNotFoundError:
            return False
        now = time.time()
        return any(t == key and float(at) > now for t, _, at in (line.partition(" ") for line in lines))

    def _behavior(self, request: web.Request, body: dict[str, Any], text: str
                  ) -> tuple[Any, Behavior]:
        """The hooks asked for, with the error ones raised here, before the body is validated."""
        header = request.headers.get(BEHAVIOR_HEADER, "")
        model, behavior = requested_behavior(header, body.get("model"), text)
        if behavior.hang:
            raise _Hang()
        status = behavior.status
        if status is None and behavior.flaky and random.random() * 100 < behavior.flaky:
            status = 500
        if behavior.too_long:
            raise _Refusal(400, wire.error_body(*CONTEXT_TOO_LONG[:2], "messages",
                                                CONTEXT_TOO_LONG[2]), None, behavior.delay)
        if status is not None:
            message, type_, code = ERRORS[status]
            headers = RETRY_HEADERS if status == 429 else None
            error = wire.error_body(message.format(model=model), type_, None, code)
            raise _Refusal(status, error, headers, behavior.delay)
        return model, behavior

    async def _send_json(self, request: web.Request, payload: bytes,
                         behavior: Behavior) -> web.StreamResponse:
        with self._log(behavior) as seen:
            await _pause(request, behavior.delay)
            if not behavior.abort:
                seen["bytes_sent"] = len(payload)
                return self._response(payload)
            response = web.StreamResponse(headers=self._headers(JSON))
            response.content_length = len(payload)
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            seen["outcome"] = "aborted"
            return _abort(request, response)

    async def _send_events(self, request: web.Request, events: Iterable[bytes],
                           behavior: Behavior) -> web.StreamResponse:
        with self._log(behavior) as seen:
            await _pause(request, behavior.delay)
            response = web.StreamResponse(headers=self._headers(EVENT_STREAM))
            await response.prepare(request)
            try:
                if behavior.abort:
                    for event in list(events)[:2]:
                        await response.write(event)
                    seen["outcome"] = "aborted"
                    return _abort(request, response)
                if not behavior.delay and not behavior.size:
                    # An instant upstream: every event in one write, as the peers' mock did.
                    events = [b"".join(events)]
                for i, event in enumerate(events):
                    if i and behavior.delay:
                        await _pause(request, behavior.delay)
                    await response.write(event)
                    seen["bytes_sent"] += len(event)
                await response.write_eof()
            except (ConnectionError, _Gone):
                seen["outcome"] = "client_closed"  # the client went away mid-stream
            return response

    def _log(self, behavior: Behavior) -> _TagLog:
        return _TagLog(self.tagged if behavior.tag else None, behavior.tag)

    def _response(self, body: bytes, status: int = 200, extra: dict[str, str] | None = None
                  ) -> web.Response:
        headers = self._headers(JSON)
        if extra:
            headers.update(extra)
        return web.Response(body=body, status=status, headers=headers)

    def _headers(self, content_type: str) -> dict[str, str]:
        return {
            "Content-Type": content_type,
            "x-request-id": self._id("req_", 32),
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
        }

    def _id(self, prefix: str, width: int) -> str:
        """Unique per fake, shaped like OpenAI's: a prefix then `width` alphanumerics."""
        return f"{prefix}{self._run}{next(self._serial):0{width - len(self._run)}d}"


class _TagLog:
    """Notes how a tagged request ended: completed, client_closed, aborted (by the fake's hook)."""

    def __init__(self, log: OrderedDict[str, dict[str, Any]] | None, tag: str) -> None:
        self._log, self._tag = log, tag
        self.seen: dict[str, Any] = {"tag": tag, "started_at": time.time() if tag else 0.0,
                                     "ended_at": None, "outcome": "running", "bytes_sent": 0}

    def __enter__(self) -> dict[str, Any]:
        if self._log is not None:
            self._log[self._tag] = self.seen
            while len(self._log) > TAGS_KEPT:
                self._log.popitem(last=False)
        return self.seen

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if self._log is None:
            return
        self.seen["ended_at"] = time.time()
        if self.seen["outcome"] == "running":
            self.seen["outcome"] = "client_closed" if kind in (_Gone, ConnectionError) else (
                "completed" if kind is None else "failed")


async def _pause(request: web.Request, seconds: float) -> None:
    """Sleep, watching the connection: aiohttp does not cancel a handler whose client left, so it
    is polled (every 10 ms), and the request ends with _Gone as soon as it has."""
    end = time.monotonic() + seconds
    while True:
        if request.transport is None or request.transport.is_closing():
            raise _Gone()
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.01))


def _no_size(behavior: Behavior) -> None:
    if behavior.size:
        raise InvalidRequest("The fake behavior size-<bytes> applies to streamed chat completions "
                             "only.", BEHAVIOR_HEADER)


def _abort(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    # Closing the transport without the final chunk is what a dropped upstream looks like;
    # aiohttp's write_eof then meets a closed socket, which it treats as a client disconnect.
    if request.transport is not None:
        request.transport.close()
    return response


def _masked(key: str) -> str:
    return key[:3] + "*" * (len(key) - 7) + key[-4:] if len(key) > 8 else key[:3] + "***"
