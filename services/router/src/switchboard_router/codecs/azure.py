"""Azure OpenAI: OpenAI's format on Azure's paths, pure functions, no I/O.

Classic API: `{endpoint}/openai/deployments/{deployment}/{path}?api-version=...` with the `api-key`
header (or an Entra ID token as Bearer); the deployment, not the body's model, picks the model.
v1 API (`api_version: v1`): `{endpoint}/openai/v1/{path}`, no api-version.
https://learn.microsoft.com/azure/ai-services/openai/reference

Streams differ from OpenAI's in two ways the relay smooths over: the first chunk may hold only
`prompt_filter_results` with empty `choices` (dropped: OpenAI clients read `choices[0]`), and
asynchronous-filter chunks may lack `delta` (given an empty one). Content filtering of the answer
arrives as `finish_reason: content_filter`, OpenAI's own value, and a filtered prompt as a 400 with
code `content_filter`; both pass as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from switchboard_common.errors import ApiError

from switchboard_router.codecs import openai
from switchboard_router.codecs.base import HttpRequest
from switchboard_router.codecs.sse import SseDecoder
from switchboard_router.domain import Endpoint, ProviderSpec
from switchboard_router.providers.base import Call, Reply

V1 = "v1"
DEFAULT_API_VERSION = "2024-10-21"
PATHS = {Endpoint.CHAT: "/chat/completions", Endpoint.COMPLETIONS: "/completions",
         Endpoint.EMBEDDINGS: "/embeddings"}  # Azure has no moderations endpoint


class AzureCodec:
    endpoints = frozenset(PATHS)

    def __init__(self, w: openai.Wire, api_version: str) -> None:
        self.wire = w
        self.api_version = api_version

    def request(self, call: Call) -> HttpRequest:
        if self.api_version == V1:
            path = "/openai/v1" + PATHS[call.endpoint]
        else:
            path = (f"/openai/deployments/{call.upstream_model}{PATHS[call.endpoint]}"
                    f"?api-version={self.api_version}")
        return HttpRequest(*openai.build_request(self.wire, call, path))

    def response(self, call: Call, body: bytes) -> Reply:
        parsed, usage = openai.parse_response(body)
        return Reply(data=body, usage=usage, text=lambda: openai.response_text(parsed), parsed=parsed)

    def relay(self, call: Call, count: Callable[[str], int]) -> AzureRelay:
        return AzureRelay(openai.SseRelay(forward_usage=call.include_usage, count=count))

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        return openai.map_error(status, body, retry_after)


def codec(spec: ProviderSpec) -> AzureCodec:
    api_version = spec.api_version or DEFAULT_API_VERSION
    headers = dict(spec.headers)
    if spec.api_key:
        # Classic keys go in api-key; the v1 API and Entra ID tokens use Bearer.
        header = "authorization" if spec.credential == "oauth" else \
            spec.auth_header or ("authorization" if api_version == V1 else "api-key")
        if header != "authorization":
            headers[header] = spec.api_key
    base = spec.base_url.rstrip("/").removesuffix("/openai/v1").removesuffix("/openai")
    return AzureCodec(openai.wire(base, spec.api_key, headers, spec.stream_usage), api_version)


class AzureRelay:
    """Azure's chunks made OpenAI's, then the OpenAI relay (usage, end, errors, counting)."""

    def __init__(self, inner: openai.SseRelay) -> None:
        self._inner = inner
        self._decoder = SseDecoder()
        self.completion = inner.completion

    @property
    def usage(self):
        return self._inner.usage

    @property
    def error(self) -> ApiError | None:
        return self._inner.error

    def feed(self, read: bytes) -> bytes:
        kept = self._kept(self._decoder.feed(read))
        return self._inner.feed(kept) if kept else b""

    def finish(self) -> bytes:
        kept = self._kept(self._decoder.close())
        out = self._inner.feed(kept) if kept else b""
        return out + self._inner.finish()

    def completion_tokens(self) -> int:
        return self._inner.completion_tokens()

    @staticmethod
    def _kept(events: list) -> bytes:
        out: list[bytes] = []
        for event in events:
            data = event.data
            if data and data != b"[DONE]" and (b"prompt_filter_results" in data or b'"delta"' not in data):
                chunk = _json(data)
                if isinstance(chunk, dict):
                    choices = chunk.get("choices")
                    if choices == [] and chunk.get("usage") is None and "error" not in chunk:
                        continue  # the prompt-filter annotation chunk
                    if isinstance(choices, list) and any(isinstance(c, dict) and "delta" not in c
                                                         for c in choices):
                        chunk["choices"] = [{**c, "delta": {}} if isinstance(c, dict) and "delta" not in c
                                            else c for c in choices]
                        out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
                        continue
            out.append(event.raw + b"\n\n")
        return b"".join(out)


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
