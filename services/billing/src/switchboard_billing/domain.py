"""Billing's domain: usage entries, spend totals, who is asking; no gRPC, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

OUTCOMES = ("success", "error", "client_abort", "unspecified")


@dataclass(frozen=True)
class UsageEntry:
    """One request's usage as billing stores it (one row per request id)."""

    request_id: str
    occurred_at: datetime
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
    # Zero until the price catalog exists (a later issue prices stored usage).
    cost_micros_usd: int = 0
    outcome: str = "unspecified"
    http_status: int = 0
    error_type: str = ""
    latency_ms: int = 0
    ttfb_ms: int = 0
    session_id: str = ""
    reserved_micros_usd: int = 0

    def as_row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SpendTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_micros_usd: int = 0
    errors: int = 0

    def __add__(self, other: SpendTotals) -> SpendTotals:
        return SpendTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class Spend:
    totals: SpendTotals
    by_model: list[tuple[str, SpendTotals]]


@dataclass(frozen=True)
class UsageFilter:
    """Which stored usage a query covers; empty fields do not filter."""

    key_id: str = ""
    tenant_id: str = ""
    model: str = ""
    provider: str = ""
    start_time: datetime | None = None  # inclusive
    end_time: datetime | None = None  # exclusive


@dataclass(frozen=True)
class TimeWindow:
    """The time span a caller asked for, as asked: resolved into UsageFilter's start and end by
    `periods.bounds`. Each bound comes from the explicit time when set, else from the date, else
    from the period; all of them are UTC."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    period: str = ""  # "daily", "monthly" or "total": the current calendar period
    start_date: str = ""  # YYYY-MM-DD
    end_date: str = ""  # YYYY-MM-DD, the whole day included


@dataclass(frozen=True)
class UsagePage:
    entries: list[UsageEntry]
    next_cursor: tuple[datetime, str] | None


@dataclass(frozen=True)
class Caller:
    """Who is asking, as auth's Authorize told us."""

    key_id: str
    tenant_id: str
    is_admin: bool


def utc_now() -> datetime:
    return datetime.now(UTC)
