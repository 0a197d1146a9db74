"""switchboard.yaml's schema: every section, field and bound the router reads, strict (an unknown
key is an error naming it). config.py parses the file against it and builds the providers' specs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    field_validator,
    model_validator,
)

from switchboard_router import config_oauth, strategies
from switchboard_router.cache.config import CacheConfig

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKeyConfig(_Strict):
    """One of a provider's `api_keys` written out: the key and how much of the traffic it takes."""

    key: str
    weight: int = Field(1, ge=1, le=1000)
    rpm: int | None = Field(None, ge=1)  # this key's own requests per minute


class _Credentials(_Strict):
    """What a provider (or one deployment) authenticates with: one key, several, or OAuth."""

    api_key: str | None = None
    # Several keys, rotated and failed over within the provider (keyring.py); instead of api_key.
    # `[]`: no key in the file, all from /api/credentials (stored_credentials.py).
    api_keys: list[ApiKeyConfig] | None = Field(None, max_length=64)
    key_selection: Literal["round_robin", "least_recently_throttled"] | None = None
    oauth: config_oauth.OAuthConfig | None = None

    @field_validator("api_keys", mode="before")
    @classmethod
    def _plain_keys(cls, value: Any) -> Any:
        """`- ${KEY}` is short for `- {key: ${KEY}}`."""
        if isinstance(value, list):
            return [{"key": v} if isinstance(v, str) else v for v in value]
        return value


class ProviderConfig(_Credentials):
    type: str | None = None  # the adapter: a key of providers.ADAPTERS; implied by `vendor`
    vendor: str | None = None  # a key of catalog.VENDORS: fills base_url, api_key, quirks
    base_url: str | None = None
    api_key_required: bool | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    stream_usage: bool | None = None
    owned_by: str | None = None
    timeout_seconds: PositiveFloat | None = None
    read_timeout_seconds: PositiveFloat | None = None
    connect_timeout_seconds: PositiveFloat | None = None
    first_byte_timeout_seconds: PositiveFloat | None = None
    # Only for the formats that read them (providers.ADAPTERS[type].reads_api_version):
    # Azure's api-version ("v1": the v1 API path), Anthropic's anthropic-version.
    api_version: str | None = Field(None, min_length=1)
    auth_header: Literal["authorization", "api-key", "x-api-key"] | None = None
    # Only for the AWS formats (providers.ADAPTERS[type].reads_region): the region signed for.
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    # Only for the formats that read them (providers.ADAPTERS[type].reads_project): Vertex AI's
    # Google Cloud project and location.
    project: str | None = Field(None, min_length=1)
    location: str | None = Field(None, pattern=r"^[a-z0-9-]{1,63}$")


class DeploymentConfig(_Credentials):
    """A provider's model in a model group. Its credentials (`_Credentials`), when it has any,
    replace its provider's (then `name` is required): the deployment is served by a provider of
    its own, `<provider>@<name>` (config.py)."""

    provider: str
    model: str | None = None  # the provider's name for it; default: the name the client asked for
    name: str | None = None  # shown in routing stats and usage; default "<provider>/<model>"
    weight: int = Field(1, ge=1)
    # failover tries the lowest first (ties: the file's order).
    priority: int = Field(0, ge=0)
    timeout_seconds: PositiveFloat | None = None
    read_timeout_seconds: PositiveFloat | None = None
    connect_timeout_seconds: PositiveFloat | None = None
    # A stream's first bytes must come within this (default: the provider's, else the total).
    first_byte_timeout_seconds: PositiveFloat | None = None


def _known_strategy(name: str | None) -> str | None:
    if name is not None and name not in strategies.STRATEGIES:
        raise ValueError(f"unknown routing strategy {name!r} "
                         f"(known: {', '.join(strategies.STRATEGIES)})")
    return name


StrategyName = Annotated[str, AfterValidator(_known_strategy)]


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    deployments: list[DeploymentConfig] = Field(min_length=1)
    # Its context window: session memory fits earlier turns into it (memory's default when unset).
    context_window_tokens: int | None = Field(None, ge=256, le=100_000_000)
    # How this group's deployments are ordered; default: routing.strategy (or ROUTING_STRATEGY).
    strategy: StrategyName | None = None
    # Other models (names or aliases in this file) tried in turn once every deployment of this
    # one failed or is unavailable; the request is translated to each one's wire format.
    fallbacks: list[str] = Field(default_factory=list, max_length=8)
    # ... and for one error only, after any deployment answered it: a prompt too long for the
    # context window (a larger model), a refusal by a content policy (another provider).
    context_window_fallbacks: list[str] = Field(default_factory=list, max_length=8)
    content_policy_fallbacks: list[str] = Field(default_factory=list, max_length=8)
    # Answers of this group are cached unless a request says `x-switchboard-cache: off`
    # (cache/; the `cache` section says where and how long). Default: only requests that ask.
    cache: bool = False


class RetriesConfig(_Strict):
    """Passes over a model's deployments after the first failed (retryable failures only)."""

    attempts: int = Field(2, ge=0, le=10)
    initial_backoff_seconds: float = Field(0.1, ge=0)
    max_backoff_seconds: float = Field(5.0, ge=0)
    jitter_seconds: float = Field(0.1, ge=0)
    # A provider asking to wait longer than this (Retry-After) is not waited for: the client hears it.
    max_retry_after_seconds: float = Field(10.0, ge=0)
    budget_ratio: float = Field(0.2, ge=0, le=1)  # retries may add this share of the requests
    budget_min_retries: int = Field(10, ge=0)  # ... plus this many in reserve


class RoutingConfig(_Strict):
    strategy: StrategyName = strategies.DEFAULT
    failure_threshold: int = Field(3, ge=1)  # consecutive provider failures that open a breaker
    # ... or this share of failures among the last `failure_rate_window` calls (once
    # `failure_rate_min_calls` are in): a deployment failing every other call is taken out too.
    failure_rate_threshold: float = Field(0.5, gt=0, le=1)
    failure_rate_window: int = Field(20, ge=1, le=1000)
    failure_rate_min_calls: int = Field(10, ge=1, le=1000)
    cooldown_seconds: float = Field(30.0, ge=0)  # open this long, then half-open (one probe)
    # A deployment that answered 429 without Retry-After rests this long (with one: as it says).
    throttle_cooldown_seconds: float = Field(1.0, ge=0)
    max_throttle_cooldown_seconds: float = Field(300.0, ge=0)  # the cap on a provider's Retry-After
    retries: RetriesConfig = RetriesConfig()

    @model_validator(mode="after")
    def _window_holds_min_calls(self) -> RoutingConfig:
        if self.failure_rate_min_calls > self.failure_rate_window:
            raise ValueError("failure_rate_min_calls must not exceed failure_rate_window (the "
                             "rate would never be judged)")
        return self


class GuardrailsConfig(_Strict):
    # Applied to every request, before each tenant's and key's own (which can only add to them).
    # Policies are made with /api/guardrails/policies; this names them by id.
    default_policy_ids: list[str] = Field(default_factory=list, max_length=16)


class ResponsesConfig(_Strict):
    # /v1/responses: true stores every response unless the request says `store: false` (OpenAI's
    # default), in memory; false stores none, and refuses `store: true` and previous_response_id.
    store: bool = True


class FileConfig(_Strict):
    providers: dict[str, ProviderConfig]
    models: list[ModelConfig] = Field(default_factory=list)
    routing: RoutingConfig = RoutingConfig()
    moderation_model: str = "omni-moderation-latest"
    guardrails: GuardrailsConfig = GuardrailsConfig()
    cache: CacheConfig = CacheConfig()  # the response cache's store (cache/config.py)
    responses: ResponsesConfig = ResponsesConfig()
    # Billing's section: billing reads this file itself and validates `prices` strictly at its
    # start (switchboard_billing.price_config); the router never prices anything.
    prices: Any = None


# Sections the file will hold once what reads them is built; until then a file that sets them is
# refused, since nothing would apply them.
