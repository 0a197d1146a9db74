"""A fake Azure OpenAI resource: the fake OpenAI API on Azure's paths, auth and stream quirks.

    python -m tests.fakes.azure_fake --host 127.0.0.1 --port 0 [--port-file PATH]

Classic API: `POST /openai/deployments/{deployment}/{chat/completions|completions|embeddings}`
with a required `api-version` query parameter; the deployment, not the body's model, names the
model. v1 API: `POST /openai/v1/...` with no api-version (or `preview`). Keys: the `api-key` header
or `Authorization: Bearer` (an Entra ID token or, on v1, the key). Requests are validated as the
OpenAI fake validates them (OpenAI's spec).

Streams start, as Azure's do, with a chunk of empty `choices` holding `prompt_filter_results`, and
every chunk carries `content_filter_results`. "[fake:content-filter]"-style trigger: a last user
message containing `trigger_filter` is answered with `finish_reason: content_filter`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import openai_wire as wire
from tests.fakes.openai_app import OpenAIApp, RecordedRequest, _Refusal
from tests.fakes.openai_hooks import Behavior

API_VERSIONS = frozenset({"2024-10-21", "2024-06-01", "2025-04-01-preview"})
FILTER_TRIGGER = "trigger_filter"
FILTERED = web.RequestKey("filtered", bool)
_SAFE = {"hate": {"filtered": False, "severity": "safe"}, "self_harm": {"filtered": False, "severity": "safe"},
         "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}
PROMPT_FILTER_CHUNK = b"data: " + orjson.dumps({
    "choices": [], "created": 0, "id": "", "model": "", "object": "",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _SAFE}]}) + b"\n\n"


def _azure_error(status: int, code: str, message: str) -> _Refusal:
    return _Refusal(status, orjson.dumps({"error": {"code": code, "message": message}}))


class AzureApp(OpenAIApp):
    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._refusals], client_max_size=64 * 2**20)
        for path, handler in (("chat/completions", self._chat), ("completions", self._completions),
                              ("embeddings", self._embeddings)):
            app.router.add_post(f"/openai/deployments/{{deployment}}/{path}", handler)
            app.router.add_post(f"/openai/v1/{path}", handler)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def _admit(self, request: web.Request, json_body: bool = True) -> Any:
        raw = await request.read() if request.body_exists else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if self.record:
            self.requests.append(RecordedRequest(request.method, request.path, request.headers, body))
        deployment = request.match_info.get("deployment")
        version = request.query.get("api-version")
        if deployment is not None and version not in API_VERSIONS:
            raise _azure_error(404, "404", "Resource not found") if version is None else \
                _azure_error(400, "BadRequest", "API version not supported")
        if deployment is None and version not in (None, "preview"):
            raise _azure_error(400, "BadRequest", "API version not supported")
        key = request.headers.get("api-key") or ""
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        if not (key or (scheme.lower() == "bearer" and bearer.strip())):
            raise _azure_error(401, "401", "Access denied due to invalid subscription key or wrong API "
                                           "endpoint. Make sure to provide a valid key for an active "
                                           "subscription and use a correct regional API endpoint for your "
                                           "resource.")
        if not isinstance(body, dict):
            raise _azure_error(400, "BadRequest", "Invalid JSON body")
        if deployment is not None:
            body["model"] = deployment  # the deployment is the model
        messages = body.get("messages")
        request[FILTERED] = isinstance(messages, list) and bool(messages) and \
            FILTER_TRIGGER in orjson.dumps(messages[-1]).decode()
        return body

    async def _send_json(self, request: web.Request, payload: bytes, behavior: Behavior) -> web.StreamResponse:
        if request.get(FILTERED):
            payload = payload.replace(b'"finish_reason":"stop"', b'"finish_reason":"content_filter"')
        return await super()._send_json(request, payload, behavior)

    async def _send_events(self, request: web.Request, events: Iterable[bytes],
                           behavior: Behavior) -> web.StreamResponse:
        return await super()._send_events(
            request, _azure_stream(list(events), bool(request.get(FILTERED))), behavior)


def _azure_stream(events: list[bytes], filtered: bool) -> list[bytes]:
    out = [PROMPT_FILTER_CHUNK]
    for event in events:
        if event.startswith(b"data: {") and b'"chat.completion.chunk"' in event:
            chunk = orjson.loads(event[6:])
            for choice in chunk.get("choices") or ():
                choice["content_filter_results"] = {} if choice.get("finish_reason") else _SAFE
                if filtered and choice.get("finish_reason") == "stop":
                    choice["finish_reason"] = "content_filter"
            event = wire.event(chunk)
        out.append(event)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    args = parser.parse_args()

    async def serve() -> None:
        runner = web.AppRunner(AzureApp(record=False).application(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if args.port_file:
            args.port_file.write_text(str(port))
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
