"""Billing's domain: usage entries, spend totals, who is asking; no gRPC, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

# Who is asking, as auth's Authorize told us: the same type in the router.
from switchboard_common.caller import Caller as Caller

OUTCOMES = ("success", "error", "client_abort", "interrupted", "unspecified")


@dataclass(frozen=True)
class UsageEntry:
    """One request's usage as billing stores it (one row per event id, which the router mints;
    `request_id` is the caller's x-request-id, for correlation, and may repeat)."""

    request_id: str
    occurred_at: datetime
    event_id: str = ""
    key_id: str = ""
    tenant_id: str = ""
    model: str = ""
    provider: str = ""
    deployment: str = ""
    upstream_model: str = ""
    endpoint: str = ""
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    token_source: str = "unspecified"
    cost_micros_usd: int = 0  # 0 when price_unknown
    outcome: str = "unspecified"
    http_status: int = 0
    error_type: str = ""
    latency_ms: int = 0
    ttfb_ms: int = 0
    session_id: str = ""
    reserved_micros_usd: int = 0
    user_id: str = ""
    cached_prompt_tokens: int = 0
    cache_write_prompt_tokens: int = 0
    reasoning_tokens: int = 0
    # Not priced yet (or no price known): the cost is unknown, not free.
    price_unknown: bool = True
    price_source: str = ""  # "switchboard.yaml" or "genai-prices <version>"
    budget_lease_id: str = ""
    guardrails: str = ""  # what the guardrail checks found ("warn:pii/email"; "unchecked")
    rag_sources: str = ""  # the RAG chunk ids the request was given
    cache_hit: bool = False  # served from the router's response cache: costs 0

    def __post_init__(self) -> None:
        if not self.event_id:  # stored before routers minted ids: unique by request id then
            object.__setattr__(self, "event_id", self.request_id)

    @classmethod
    def of(cls, values: dict) -> UsageEntry:
        """An entry from a value for every field but the price (a decoded event, unpriced; the
        dict becomes the entry's own). Per event on billing's hot path: __init__ sets 33 frozen
        fields one `object.__setattr__` at a time, which costs more than decoding the event."""
        entry = object.__new__(cls)
        values.update(cost_micros_usd=0, price_unknown=True, price_source="")
        object.__setattr__(entry, "__dict__", values)
        return entry

    def as_row(self) -> dict:
        return dict(self.__dict__)  # every field, and nothing else: no slots, no extra attributes

    def with_price(self, cost_micros_usd: int, price_unknown: bool, price_source: str
                   ) -> UsageEntry:
        """A copy priced. Per event on billing's hot path: `dataclasses.replace` (or __init__)
        sets 30 frozen fields one `object.__setattr__` at a time; this copies the dict once."""
        priced = object.__new__(UsageEntry)
        priced.__dict__.update(self.__dict__, cost_micros_usd=cost_micros_usd,
                               price_unknown=price_unknown, price_source=price_source)
        return priced


@dataclass(frozen=True)
class SpendTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_micros_usd: int = 0
    errors: int = 0
    unpriced_requests: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: SpendTotals) -> SpendTotals:
        return SpendTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


GROUPS = ("model", "provider", "key", "tenant", "user", "day", "hour")


@dataclass(frozen=True)
class SpendGroup:
    """The totals of one group; `keys` holds the value of each grouped-by name (GROUPS)."""

    keys: dict[str, str]
    totals: SpendTotals


@dataclass(frozen=True)
class Spend:
    totals: SpendTotals
    by_model: list[tuple[str, SpendTotals]]
    groups: list[SpendGroup] = field(default_factory=list)
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True)
class UsageFilter:
    """Which stored usage a query covers; empty fields do not filter."""

    key_id: str = ""
    tenant_id: str = ""
    model: str = ""
    provider: str = ""
    user_id: str = ""
    start_time: datetime | None = None  # inclusive
    end_time: datetime | None = None  # exclusive


@dataclass(frozen=True)
class TimeWindow:
    """The time span a caller asked for, as asked: resolved into UsageFilter's start and end by
    `periods.bounds`. Each bound comes from the explicit time when set, else from the date, else
    from the period; all of them are UTC."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    period: str = ""  # "daily", "weekly", "monthly" or "total": the current calendar period
    start_date: str = ""  # YYYY-MM-DD
    end_date: str = ""  # YYYY-MM-DD, the whole day included


@dataclass(frozen=True)
class UsagePage:
    entries: list[UsageEntry]
    next_cursor: tuple[datetime, str] | None


def utc_now() -> datetime:
    return datetime.now(UTC)


BUDGET_PERIODS = ("daily", "monthly", "total")
DEFAULT_ALERT_THRESHOLDS = (50, 80, 100)


@dataclass(frozen=True)
class BudgetRule:
    """One limited period of a key's or tenant's budget (a row of `budgets`); None: that unit is
    not limited."""

    budget_id: str
    scope: str  # "key" or "tenant"
    scope_id: str
    period: str  # BUDGET_PERIODS
    limit_micros_usd: int | None
    limit_tokens: int | None
    alert_thresholds: tuple[int, ...] = DEFAULT_ALERT_THRESHOLDS
    webhook_url: str = ""
    webhook_secret: str = ""


@dataclass(frozen=True)
class BudgetSpec:
    """What SetBudget asks for: the whole budget of one key or tenant."""

    scope: str
    scope_id: str
    limits: dict[str, tuple[int | None, int | None]]  # period -> (micro-dollars, tokens)
    alert_thresholds: tuple[int, ...] = DEFAULT_ALERT_THRESHOLDS
    webhook_url: str = ""
    webhook_secret: str = ""


@dataclass(frozen=True)
class Standing:
    """Where one budget rule stands in its current period."""

    rule: BudgetRule
    period_start: datetime
    resets_at: datetime | None
    spent_micros_usd: int = 0
    spent_tokens: int = 0
    leased_micros_usd: int = 0
    leased_tokens: int = 0

    @property
    def remaining_micros_usd(self) -> int:
        limit = self.rule.limit_micros_usd
        return 0 if limit is None else max(limit - self.spent_micros_usd - self.leased_micros_usd, 0)

    @property
    def remaining_tokens(self) -> int:
        limit = self.rule.limit_tokens
        return 0 if limit is None else max(limit - self.spent_tokens - self.leased_tokens, 0)


@dataclass(frozen=True)
class LeaseGrant:
    lease_id: str
    expires_at: datetime
    granted_micros_usd: int = 0
    granted_tokens: int = 0
    no_dollar_limit: bool = True
    no_token_limit: bool = True
    held_micros_usd: int = 0
    held_tokens: int = 0
    remaining_micros_usd: int = 0
    remaining_tokens: int = 0
