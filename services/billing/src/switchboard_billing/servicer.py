"""BillingService: proto <-> domain translation and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc

from switchboard_common import pagination
from switchboard_common.credentials import bearer_key
from switchboard_common.errors import NotImplementedYet

from switchboard_billing.domain import SpendTotals, TimeWindow, UsageEntry, UsageFilter
from switchboard_billing.spend import SpendQueries

BUDGETS_LATER = "budgets are not built yet: a later issue adds budgets, leases and settlement"


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, queries: SpendQueries) -> None:
        self._queries = queries

    async def GetSpend(self, request, context):
        spend = await self._queries.spend(_presented_key(context), _filter(request),
                                          _window(request))
        return billing_pb2.GetSpendResponse(
            totals=_totals(spend.totals),
            by_model=[billing_pb2.ModelSpend(model=m, totals=_totals(t))
                      for m, t in spend.by_model])

    async def ListUsage(self, request, context):
        page = await self._queries.usage(
            _presented_key(context), _filter(request), pagination.decode(request.page_token),
            pagination.page_size(request.page_size), _window(request))
        return billing_pb2.ListUsageResponse(records=[_record(e) for e in page.entries],
                                             next_page_token=pagination.encode(page.next_cursor))

    async def GetBudget(self, request, context):
        raise NotImplementedYet(BUDGETS_LATER)

    async def SetBudget(self, request, context):
        raise NotImplementedYet(BUDGETS_LATER)

    async def LeaseBudget(self, request, context):
        raise NotImplementedYet(BUDGETS_LATER)

    async def ReturnBudget(self, request, context):
        raise NotImplementedYet(BUDGETS_LATER)


def _presented_key(context: grpc.aio.ServicerContext) -> str:
    """The caller's API key from the call's metadata; empty when there is none."""
    return bearer_key(context.invocation_metadata())


def _filter(request: billing_pb2.GetSpendRequest | billing_pb2.ListUsageRequest) -> UsageFilter:
    return UsageFilter(key_id=request.key_id, tenant_id=request.tenant_id, model=request.model,
                       provider=request.provider)


def _window(request: billing_pb2.GetSpendRequest | billing_pb2.ListUsageRequest) -> TimeWindow:
    return TimeWindow(start_time=_dt(request, "start_time"), end_time=_dt(request, "end_time"),
                      period=request.period, start_date=request.start_date,
                      end_date=request.end_date)


def _totals(t: SpendTotals) -> billing_pb2.SpendTotals:
    return billing_pb2.SpendTotals(
        requests=t.requests, prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
        total_tokens=t.total_tokens, cost_micros_usd=t.cost_micros_usd, errors=t.errors)


def _record(e: UsageEntry) -> billing_pb2.UsageRecord:
    occurred_at = Timestamp()
    occurred_at.FromDatetime(e.occurred_at)
    return billing_pb2.UsageRecord(
        request_id=e.request_id, occurred_at=occurred_at, key_id=e.key_id, tenant_id=e.tenant_id,
        model=e.model, provider=e.provider, prompt_tokens=e.prompt_tokens,
        completion_tokens=e.completion_tokens, total_tokens=e.total_tokens,
        cost_micros_usd=e.cost_micros_usd, outcome=e.outcome, latency_ms=e.latency_ms)


def _dt(request, field: str) -> datetime | None:
    return getattr(request, field).ToDatetime(tzinfo=UTC) if request.HasField(field) else None
