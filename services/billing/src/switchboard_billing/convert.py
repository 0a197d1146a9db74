"""Billing's proto messages from its domain and back: records, spend, budgets, leases, prices."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.billing.v1 import billing_pb2 as pb

from switchboard_common.errors import InvalidRequest

from switchboard_billing.domain import (
    BudgetSpec,
    LeaseGrant,
    Spend,
    SpendTotals,
    Standing,
    TimeWindow,
    UsageEntry,
    UsageFilter,
)
from switchboard_billing.pricing import ModelRef, Quote, per_million_micros

PERIOD_NAMES = {pb.BUDGET_PERIOD_DAILY: "daily", pb.BUDGET_PERIOD_MONTHLY: "monthly",
                pb.BUDGET_PERIOD_TOTAL: "total"}
PERIOD_ENUMS = {name: value for value, name in PERIOD_NAMES.items()}
_GROUP_FIELDS = {"model": "model", "provider": "provider", "key": "key_id", "tenant": "tenant_id",
                 "user": "user_id", "day": "day", "hour": "hour"}
_HEADLINE = ("monthly", "daily", "total")  # the period AILB's one-budget view shows


def ts(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    out = Timestamp()
    out.FromDatetime(at)
    return out


def dt(request, field: str) -> datetime | None:
    return getattr(request, field).ToDatetime(tzinfo=UTC) if request.HasField(field) else None


def usage_filter(request) -> UsageFilter:
    return UsageFilter(key_id=request.key_id, tenant_id=request.tenant_id, model=request.model,
                       provider=request.provider, user_id=request.user_id)


def window(request) -> TimeWindow:
    return TimeWindow(start_time=dt(request, "start_time"), end_time=dt(request, "end_time"),
                      period=request.period, start_date=request.start_date,
                      end_date=request.end_date)


def totals(t: SpendTotals) -> pb.SpendTotals:
    return pb.SpendTotals(
        requests=t.requests, prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
        total_tokens=t.total_tokens, cost_micros_usd=t.cost_micros_usd, errors=t.errors,
        price_unknown=t.unpriced_requests > 0, unpriced_requests=t.unpriced_requests,
        cached_prompt_tokens=t.cached_prompt_tokens, reasoning_tokens=t.reasoning_tokens)


def spend(s: Spend) -> pb.GetSpendResponse:
    return pb.GetSpendResponse(
        totals=totals(s.totals),
        by_model=[pb.ModelSpend(model=m, totals=totals(t)) for m, t in s.by_model],
        groups=[pb.SpendGroup(totals=totals(g.totals),
                              **{_GROUP_FIELDS[k]: v for k, v in g.keys.items()})
                for g in s.groups],
        start_time=ts(s.start_time), end_time=ts(s.end_time))


def record(e: UsageEntry) -> pb.UsageRecord:
    return pb.UsageRecord(
        event_id=e.event_id, request_id=e.request_id, occurred_at=ts(e.occurred_at),
        key_id=e.key_id, tenant_id=e.tenant_id, user_id=e.user_id, model=e.model,
        provider=e.provider, deployment=e.deployment, endpoint=e.endpoint, stream=e.stream,
        prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens,
        total_tokens=e.total_tokens, cached_prompt_tokens=e.cached_prompt_tokens,
        cache_write_prompt_tokens=e.cache_write_prompt_tokens,
        reasoning_tokens=e.reasoning_tokens, cost_micros_usd=e.cost_micros_usd,
        price_unknown=e.price_unknown, price_source=e.price_source, outcome=e.outcome,
        http_status=e.http_status, error_type=e.error_type, latency_ms=e.latency_ms,
        guardrails=e.guardrails, rag_sources=e.rag_sources, cache_hit=e.cache_hit)


def budget_spec(r: pb.SetBudgetRequest, scope: str, scope_id: str) -> BudgetSpec:
    limits: dict[str, tuple[int | None, int | None]] = {}
    for period in ("daily", "monthly"):
        usd = _opt(r, f"{period}_limit_micros_usd")
        tokens = _opt(r, f"{period}_limit_tokens")
        if usd is not None or tokens is not None:
            limits[period] = (usd, tokens)
    if r.period != pb.BUDGET_PERIOD_UNSPECIFIED:
        period = PERIOD_NAMES[r.period]
        if period in limits:
            raise_both(period)
        tokens = _opt(r, "limit_tokens")
        usd = None if (tokens is not None and r.limit_micros_usd == 0) else r.limit_micros_usd
        limits[period] = (usd, tokens)
    elif r.limit_micros_usd or r.HasField("limit_tokens"):
        raise InvalidRequest("limit_micros_usd and limit_tokens need a period (or use the "
                             "daily_/monthly_ fields).", param="period", code="invalid_value")
    thresholds = tuple(r.alert_thresholds_percent) or (50, 80, 100)
    return BudgetSpec(scope=scope, scope_id=scope_id, limits=limits,
                      alert_thresholds=tuple(sorted(set(thresholds))),
                      webhook_url=r.webhook_url, webhook_secret=r.webhook_secret)


def raise_both(period: str) -> None:
    raise InvalidRequest(f"The {period} limits are given twice: with period and with the "
                         f"{period}_ fields.", param="period", code="invalid_value")


def budget(scope: str, scope_id: str, standings: list[Standing]) -> pb.Budget:
    out = pb.Budget(key_id=scope_id if scope == "key" else "",
                    tenant_id=scope_id if scope == "tenant" else "", exists=bool(standings))
    by_period = {s.rule.period: s for s in standings}
    for period in ("daily", "monthly", "total"):
        if period in by_period:
            out.limits.append(_limit(by_period[period]))
    headline = next((by_period[p] for p in _HEADLINE if p in by_period), None)
    if headline is None:
        return out
    rule = headline.rule
    out.period = PERIOD_ENUMS[rule.period]
    out.limit_micros_usd = rule.limit_micros_usd or 0
    out.spent_micros_usd = headline.spent_micros_usd
    out.reserved_micros_usd = headline.leased_micros_usd
    out.remaining_micros_usd = headline.remaining_micros_usd
    if rule.limit_tokens is not None:
        out.limit_tokens = rule.limit_tokens
    out.spent_tokens = headline.spent_tokens
    out.reserved_tokens = headline.leased_tokens
    out.remaining_tokens = headline.remaining_tokens
    if (resets := ts(headline.resets_at)) is not None:
        out.resets_at.CopyFrom(resets)
    out.alert_thresholds_percent.extend(rule.alert_thresholds)
    out.webhook_url = rule.webhook_url
    return out


def _limit(s: Standing) -> pb.BudgetLimit:
    out = pb.BudgetLimit(
        period=PERIOD_ENUMS[s.rule.period], spent_micros_usd=s.spent_micros_usd,
        spent_tokens=s.spent_tokens, reserved_micros_usd=s.leased_micros_usd,
        reserved_tokens=s.leased_tokens, remaining_micros_usd=s.remaining_micros_usd,
        remaining_tokens=s.remaining_tokens, period_started_at=ts(s.period_start),
        resets_at=ts(s.resets_at))
    if s.rule.limit_micros_usd is not None:
        out.limit_micros_usd = s.rule.limit_micros_usd
    if s.rule.limit_tokens is not None:
        out.limit_tokens = s.rule.limit_tokens
    return out


def lease(g: LeaseGrant) -> pb.LeaseBudgetResponse:
    return pb.LeaseBudgetResponse(
        lease_id=g.lease_id, granted_micros_usd=g.granted_micros_usd,
        granted_tokens=g.granted_tokens, no_dollar_limit=g.no_dollar_limit,
        no_token_limit=g.no_token_limit, expires_at=ts(g.expires_at),
        held_micros_usd=g.held_micros_usd, held_tokens=g.held_tokens,
        remaining_micros_usd=g.remaining_micros_usd, remaining_tokens=g.remaining_tokens)


def model_ref(q: pb.PriceQuery) -> ModelRef:
    return ModelRef(model=q.model, provider=q.provider, deployment=q.deployment,
                    upstream_model=q.upstream_model)


def price(q: pb.PriceQuery, quote: Quote) -> pb.Price:
    if quote.rates is None:
        return pb.Price(query=q, price_unknown=True)
    r = quote.rates
    return pb.Price(query=q, price_source=quote.source,
                    input_per_mtok_micros_usd=per_million_micros(r.input),
                    output_per_mtok_micros_usd=per_million_micros(r.output),
                    cached_input_per_mtok_micros_usd=per_million_micros(r.cached_input),
                    cache_write_per_mtok_micros_usd=per_million_micros(r.cache_write))


def _opt(message, field: str) -> int | None:
    return getattr(message, field) if message.HasField(field) else None
