"""Gemini on Vertex AI: Gemini's body (codecs/gemini.py) on Vertex's paths, with a service
account's OAuth token as Bearer.

`POST {base}/{v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{model}
:generateContent` (streams `:streamGenerateContent?alt=sse`); the base is the location's host
(`https://{location}-aiplatform.googleapis.com`, or `https://aiplatform.googleapis.com` for
`global`). https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest

Anthropic's Claude models on Vertex (model names claude-...) go to their own publisher's paths
in Anthropic's format (codecs/anthropic_vertex.py), natively for /v1/messages.

Credentials: the service-account key file GOOGLE_APPLICATION_CREDENTIALS names, read at start
by google-auth, which signs the JWT-bearer grant and posts it to the key's `token_uri` (a test
points that at its own token endpoint). The token is fetched off the event loop (google-auth's
transport blocks), once at a time, and kept until google-auth deems it near expiry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from switchboard_common.errors import ApiError, UpstreamError

from switchboard_router.codecs import anthropic_vertex, gemini, gemini_request
from switchboard_router.codecs.base import HttpRequest, StreamRelay
from switchboard_router.domain import Endpoint, ProviderSpec
from switchboard_router.providers.base import Call, Reply

DEFAULT_VERSION = "v1"
VERSIONS = ("v1", "v1beta1")
DEFAULT_LOCATION = "global"
DEFAULT_BASE_URL = "https://aiplatform.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_TIMEOUT_SECONDS = 10.0  # one token request (google-auth's own default is 120 s)


class ServiceAccountToken:
    """A service account's access token, fetched when missing or near expiry, one fetch at a time."""

    def __init__(self, credentials: Any, request_factory: Callable[[], Any]) -> None:
        self._credentials = credentials  # google.oauth2.service_account.Credentials
        self._request_factory = request_factory
        self._lock = asyncio.Lock()

    @property
    def token(self) -> str | None:
        return self._credentials.token if self._credentials.valid else None

    async def refresh_if_needed(self) -> None:
        if self._credentials.valid:  # google-auth: a token, not within its refresh threshold of expiry
            return
        async with self._lock:
            if self._credentials.valid:  # another request fetched it while this one waited
                return
            from google.auth import exceptions

            try:
                await asyncio.to_thread(self._credentials.refresh, self._request_factory())
            except exceptions.GoogleAuthError:
                # google-auth's message may quote the token endpoint's answer: not for clients.
                raise UpstreamError("The gateway could not get an access token for Vertex AI; the "
                                    "gateway's operator must check its service account.",
                                    code="provider_auth_error") from None


class VertexCodec:
    endpoints = frozenset({Endpoint.CHAT})

    def __init__(self, base_url: str, headers: dict[str, str], project: str, location: str,
                 token: ServiceAccountToken, version: str = DEFAULT_VERSION) -> None:
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


def load_credentials(spec: ProviderSpec) -> Any:
    """The service account of the key file, for the cloud-platform scope; a start-up error
    (naming the file, never its content) when it is unusable."""
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_file(spec.api_key, scopes=SCOPES)
    except (OSError, ValueError, KeyError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            "not a service-account key file (JSON with client_email, private_key and token_uri)"
        raise _config_error(spec, "api_key", f"cannot use {spec.api_key!r}: {reason}") from None


def _config_error(spec: ProviderSpec, field: str, message: str) -> Exception:
    from switchboard_router.config import ConfigError

    return ConfigError("the Vertex AI provider's settings", [(f"providers.{spec.name}.{field}", message)])


def _token_request() -> Any:
    """google-auth's requests transport, each call bounded by TOKEN_TIMEOUT_SECONDS."""
    from google.auth.transport.requests import Request

    class BoundedRequest(Request):
        def __call__(self, url, method="GET", body=None, headers=None, timeout=TOKEN_TIMEOUT_SECONDS, **kwargs):
            return super().__call__(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)

    return BoundedRequest()


def codec(spec: ProviderSpec) -> VertexCodec:

    credentials = load_credentials(spec)
    project = spec.project or credentials.project_id
    if not project:
        raise _config_error(spec, "project", "required: set project (or GOOGLE_CLOUD_PROJECT), or use "
                                             "a key file that names its project_id")
    location = spec.location or DEFAULT_LOCATION
    headers = {"Content-Type": "application/json", "User-Agent": "switchboard-router"}
    headers.update(spec.headers)
    return VertexCodec(base_url_for(spec.base_url, location), headers, project, location,
                       ServiceAccountToken(credentials, _token_request), spec.api_version or DEFAULT_VERSION)
