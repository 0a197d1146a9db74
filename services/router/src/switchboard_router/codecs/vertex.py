"""Gemini on Vertex AI: Gemini's body (codecs/gemini.py) on Vertex's paths, with a Google Cloud
OAuth token as Bearer; embeddings by `:predict` (codecs/gemini_embeddings.py).

`POST {base}/{v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{model}
:generateContent` (streams `:streamGenerateContent?alt=sse`); the base is the location's host
(`https://{location}-aiplatform.googleapis.com`, or `https://aiplatform.googleapis.com` for
`global`). https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest

Anthropic's Claude models on Vertex (model names claude-...) go to their own publisher's paths
in Anthropic's format (codecs/anthropic_vertex.py), natively for /v1/messages.

Credentials: whatever google-auth makes of the provider's api_key (a service-account key, an
authorized-user or external-account file, or an access token): codecs/google_credentials.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from switchboard_common.errors import ApiError, UpstreamError

from switchboard_router.codecs import (
    anthropic_vertex,
    gemini,
    gemini_embeddings,
    gemini_request,
    google_credentials,
)
from switchboard_router.codecs.base import HttpRequest, StreamRelay
from switchboard_router.codecs.google_credentials import GoogleToken
from switchboard_router.domain import Endpoint, ProviderSpec
from switchboard_router.providers.base import Call, Reply

DEFAULT_VERSION = "v1"
VERSIONS = ("v1", "v1beta1")
DEFAULT_LOCATION = "global"
DEFAULT_BASE_URL = "https://aiplatform.googleapis.com"

class VertexCodec:
    endpoints = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS})  # embeddings: predict

    def __init__(self, base_url: str, headers: dict[str, str], project: str, location: str,
                 token: GoogleToken, version: str = DEFAULT_VERSION) -> None:
        models = f"{base_url.rstrip('/')}/{version}/projects/{project}/locations/{location}/publishers/"
        self.prefix = models + "google/models/"
        self.anthropic_prefix = models + "anthropic/models/"
        self.headers = headers
        self.token = token
        # Vertex takes everything Gemini's v1beta takes (system instructions, tools, schemas).
        self._gemini = gemini.GeminiCodec(base_url, headers, gemini_request.DEFAULT_VERSION)

    async def authorize(self) -> None:
        await self.token.refresh_if_needed()

    def speaks_messages(self, upstream_model: str) -> bool:
        """Anthropic's models on Vertex take /v1/messages bodies as they are (anthropic_vertex)."""
        return anthropic_vertex.is_anthropic(upstream_model)

    def _authorized(self) -> dict[str, str]:
        token = self.token.token
        if token is None:
            raise UpstreamError("The Vertex AI access token expired before the request was sent.",
                                code="provider_auth_error")
        return {**self.headers, "Authorization": f"Bearer {token}"}

    def request(self, call: Call) -> HttpRequest:
        if anthropic_vertex.is_anthropic(call.upstream_model):
            return anthropic_vertex.request(self.anthropic_prefix, self._authorized(), call)
        if call.endpoint is Endpoint.EMBEDDINGS:
            embed = gemini_embeddings.vertex_request(call.upstream_model, call.body)
            return HttpRequest(self.prefix + call.upstream_model + ":predict", self._authorized(),
                               orjson.dumps(embed))
        method = ":streamGenerateContent?alt=sse" if call.body.get("stream") else ":generateContent"
        body = orjson.dumps(gemini_request.translate_request(call))
        return HttpRequest(self.prefix + call.upstream_model + method, self._authorized(), body)

    def count_request(self, body: dict[str, Any], upstream_model: str,
                      betas: tuple[str, ...]) -> HttpRequest:
        """count_tokens for an Anthropic model (asked only when speaks_messages says so)."""
        return anthropic_vertex.count_request(self.anthropic_prefix, self._authorized(), body,
                                              upstream_model, betas)

    def response(self, call: Call, body: bytes) -> Reply:
        if anthropic_vertex.is_anthropic(call.upstream_model):
            return anthropic_vertex.response(call, body)
        if call.endpoint is Endpoint.EMBEDDINGS:
            return gemini.embeddings_reply(*gemini_embeddings.vertex_answer(call.upstream_model,
                                                                            call.body, body))
        return self._gemini.response(call, body)

    def relay(self, call: Call, count: Callable[[str], int]) -> StreamRelay:
        if anthropic_vertex.is_anthropic(call.upstream_model):
            return anthropic_vertex.relay(call, count)
        return self._gemini.relay(call, count)

    def error(self, status: int, body: bytes, retry_after: str | None) -> ApiError:
        # Vertex's own refusals are Google's; a Claude model's are Anthropic's (anthropic_vertex)
        return anthropic_vertex.map_error(status, body, retry_after)


def base_url_for(base_url: str, location: str) -> str:
    """The catalog's global host becomes the location's own, as Vertex serves regions there."""
    if base_url.rstrip("/") == DEFAULT_BASE_URL and location != DEFAULT_LOCATION:
        return f"https://{location}-aiplatform.googleapis.com"
    return base_url


def _config_error(spec: ProviderSpec, field: str, message: str) -> Exception:
    from switchboard_router.config import ConfigError

    return ConfigError("the Vertex AI provider's settings", [(f"providers.{spec.name}.{field}", message)])


def codec(spec: ProviderSpec) -> VertexCodec:
    try:
        credentials, kind, named_project = google_credentials.load(spec.api_key)
    except google_credentials.Unusable as exc:
        raise _config_error(spec, "api_key", str(exc)) from None
    project = spec.project or named_project
    if not project:
        raise _config_error(spec, "project", "required: set project (or GOOGLE_CLOUD_PROJECT), or use "
                                             "a service-account key file that names its project_id")
    location = spec.location or DEFAULT_LOCATION
    headers = {"Content-Type": "application/json", "User-Agent": "switchboard-router"}
    headers.update(spec.headers)
    token = GoogleToken(credentials, kind, google_credentials.token_request)
    return VertexCodec(base_url_for(spec.base_url, location), headers, project, location, token,
                       spec.api_version or DEFAULT_VERSION)
