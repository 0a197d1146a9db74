"""The router's domain data: requests, callers, providers, routing targets and what a request cost."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# An admitted key, as auth's verdict describes it: the same type in billing.
from switchboard_common.caller import Caller as Caller


class Endpoint(str, Enum):
    CHAT = "chat.completions"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MODERATIONS = "moderations"


@dataclass(slots=True)
class RequestContext:
    """Who sent the request and when, from the call's metadata."""

    request_id: str
    key: str | None  # Sensitive: never log it
    started: float  # time.perf_counter() when the call arrived
    # What the caller allows, in seconds: its gRPC deadline (the whole call), and how long its
    # OpenAI SDK waits for the answer to begin (x-stainless-timeout / x-stainless-read-timeout).
    grpc_timeout: float | None = None
    sdk_timeout: float | None = None
    # time.perf_counter() by which the whole request (every attempt) must be done, and by which the
    # answer must have begun; the gateway sets them.
    deadline: float = math.inf
    first_byte_deadline: float = math.inf
    # X-Preferred-Model as sent: the model when the body names none, else a deployment of the
    # model to try first (its name or its provider's model name).
    preferred_model: str = ""
    # The caller's key's allowed_models (empty: every model): its fallbacks are held to them too.
    allowed_models: frozenset[str] = frozenset()
    # x-switchboard-guardrail-policies as sent: more policies for this request (it may only add).
    requested_policies: str = ""
    # x-switchboard-cache and Cache-Control as sent (None: not sent); read by the response cache.
    cache_switch: str | None = None
    cache_control: str | None = None
    # Response headers to send with the answer's first message (x-ratelimit-*, the cost,
    # guardrails' findings, RAG sources), which the edge turns into HTTP headers, and trailers
    # (gRPC callers read them when the call ends).
    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    # /v1/messages (inbound/native.py): the client's Anthropic body, sent as-is to a deployment
    # that speaks Anthropic's format; what in it only such a deployment can take (a field's name,
    # "" when the translation can carry it all); the betas it asked for (anthropic-beta); and
    # whether the deployment that answered was sent it (its answer is then Anthropic's own).
    native_body: dict[str, Any] | None = None
    native_only: str = ""
    anthropic_beta: tuple[str, ...] = ()
    native: bool = False


@dataclass(slots=True)
class ParsedRequest:
    """A validated request. `body` is the client's JSON as sent, unknown fields included."""

    endpoint: Endpoint
    model: str
    body: dict[str, Any]
    stream: bool = False
    n: int = 1
    include_usage: bool = False  # the client asked for stream_options.include_usage
    max_tokens: int | None = None
    session_id: str | None = None
    rag_collection: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider from switchboard.yaml with every default applied; `enabled` is False when its key
    is missing. The registry in `providers` builds an adapter from it."""

    name: str
    type: str
    base_url: str
    api_key: str  # Sensitive
    headers: dict[str, str]  # Sensitive: may hold a key
    stream_usage: bool
    owned_by: str
    enabled: bool
    key_env: str | None  # the variable that holds its key, to say how to enable it
    timeout_seconds: float | None
    read_timeout_seconds: float | None
    connect_timeout_seconds: float | None
    first_byte_timeout_seconds: float | None = None
    # Read by the formats that have them (see providers.ADAPTERS): Azure's api-version ("v1": the
    # v1 API path), Anthropic's anthropic-version; and the header that carries the key.
    api_version: str | None = None
    auth_header: str | None = None  # "authorization" (Bearer), "api-key", "x-api-key"
    region: str | None = None  # AWS formats (Bedrock): the region requests are signed for
    project: str | None = None  # Vertex AI's Google Cloud project and location
    location: str | None = None
    # `api_keys`: several keys rotated within the provider (keyring.py); api_key is the first.
    # None: the provider has no api_keys; (): none in the file (all from /api/credentials).
    api_keys: tuple[KeySpec, ...] | None = None
    key_selection: str = "round_robin"
    # `oauth`: its keys are OAuth token sets stored through /api/credentials (a device-code
    # login), or one token the router gets by the client-credentials grant; their access tokens
    # refreshed by the router (oauth.py); api_keys is then ().
    oauth: OAuthSpec | None = None
    # What api_key holds, for the codec to send it as that kind is sent: "api_key" (in the
    # format's key header, or as auth_header says), or "oauth" (an access token: always
    # `Authorization: Bearer`, whatever header the format's keys go in).
    credential: str = "api_key"


@dataclass(frozen=True, slots=True)
class OAuthSpec:
    """A provider's OAuth client from switchboard.yaml (the user's own client, never a vendor's
    consumer app): where tokens come from and how early they are refreshed."""

    client_id: str
    client_secret: str | None = field(repr=False)  # Sensitive
    token_url: str
    # "device_code": token sets a user's login stored (refresh_token grant); "client_credentials"
    # (RFC 6749 §4.4): the router gets its own token with the client's id and secret, no login.
    grant: str = "device_code"
    scopes: tuple[str, ...] = ()
    device_authorization_url: str | None = None  # RFC 8628, for `switchboard credentials login`
    revocation_url: str | None = None  # RFC 7009: a removed credential is revoked there too
    pkce: bool = False  # S256 code challenge on the device flow
    refresh_before_seconds: float = 60.0  # refresh this long before expiry (at most half the lifetime)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One of a provider's api_keys from switchboard.yaml."""

    secret: str = field(repr=False)  # Sensitive
    weight: int = 1
    rpm: int | None = None


@dataclass(slots=True)
class Tokens:
    prompt: int
    completion: int
    # Parts of `prompt` read from and written to the provider's prompt cache, and of `completion`
    # spent reasoning, as the provider reported them (billed at their own prices).
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


@dataclass(frozen=True, slots=True)
class Deployment:
    """One way to serve a model: a provider and the provider's model name, with its timeouts."""

    route: str  # the model (or wildcard) it serves, as written in switchboard.yaml
    name: str
    provider: str
    model: str | None  # None: the client's model name (or the part after a wildcard's prefix)
    weight: int
    timeout_seconds: float
    read_timeout_seconds: float
    connect_timeout_seconds: float
    stats: Any = field(compare=False, repr=False, default=None)  # its DeploymentStats
    priority: int = 0  # failover's order (lowest first)
    first_byte_timeout_seconds: float = math.inf  # a stream's first bytes, from the attempt's start


@dataclass(frozen=True, slots=True)
class Target:
    """A deployment picked for one request, with the model name to send the provider."""

    deployment: Deployment
    upstream_model: str
