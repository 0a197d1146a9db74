"""The router's domain data: requests, callers, routing targets and what a request cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


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


@dataclass(frozen=True, slots=True)
class Caller:
    """An admitted key: auth's verdict, as the router keeps it."""

    key_id: str
    tenant_id: str
    is_admin: bool = False
    allowed_models: frozenset[str] = frozenset()  # empty: every model
    guardrail_policy_ids: tuple[str, ...] = ()


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


@dataclass(slots=True)
class Tokens:
    prompt: int
    completion: int

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


@dataclass(frozen=True, slots=True)
class Target:
    """A deployment picked for one request, with the model name to send the provider."""

    deployment: Deployment
    upstream_model: str
