"""BillingService: proto <-> domain translation and nothing else."""

from __future__ import annotations

from typing import Any

import grpc
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc

from switchboard_common import pagination, strict_json
from switchboard_common.credentials import bearer_key

from switchboard_billing import budget_body, convert, export, json_view
from switchboard_billing.budgets import BudgetService, scope_of
from switchboard_billing.domain import utc_now
from switchboard_billing.leases import Amounts
from switchboard_billing.pricing import PriceBook
from switchboard_billing.spend import SpendQueries


def http_view(typed_rpc: str) -> Any:
    """`<typed_rpc>Http`: the typed RPC's answer as billing's REST JSON (json_view)."""

    async def view(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return json_view.http_body(await getattr(self, typed_rpc)(request, context))

    view.__name__ = view.__qualname__ = f"{typed_rpc}Http"
    return view


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    GetSpendHttp = http_view("GetSpend")
    ListUsageHttp = http_view("ListUsage")
    GetBudgetHttp = http_view("GetBudget")

    def __init__(self, queries: SpendQueries, budgets: BudgetService, prices: PriceBook) -> None:
        self._queries = queries
        self._budgets = budgets
        self._prices = prices

    async def GetSpend(self, request, context):
        spend = await self._queries.spend(_presented_key(context), convert.usage_filter(request),
                                          convert.window(request), list(request.group_by))
        return convert.spend(spend)

    async def ListUsage(self, request, context):
        page = await self._queries.usage(
            _presented_key(context), convert.usage_filter(request),
            pagination.decode(request.page_token), pagination.page_size(request.page_size),
            convert.window(request))
        return billing_pb2.ListUsageResponse(records=[convert.record(e) for e in page.entries],
                                             next_page_token=pagination.encode(page.next_cursor))

    async def ExportUsage(self, request, context):
        export.content_type(request.format)  # a bad format is a 400 before anything is read
        batches = await self._queries.export(_presented_key(context),
                                             convert.usage_filter(request), convert.window(request))
        async for chunk in export.chunks(batches, request.format, convert.record):
            yield chunk

    async def GetBudget(self, request, context):
        if _path_names_key(context):  # AILB's /api/billing/budget/{key_id}
            strict_json.refuse_query_override(context, "key_id")
        scope, scope_id = scope_of(request.key_id, request.tenant_id)
        standings = await self._budgets.get(_presented_key(context), scope, scope_id)
        return convert.budget(scope, scope_id, standings)

    async def SetBudget(self, request, context):
        scope, scope_id = scope_of(request.key_id, request.tenant_id)
        spec = convert.budget_spec(request, scope, scope_id)
        standings = await self._budgets.set(_presented_key(context), spec)
        return convert.budget(scope, scope_id, standings)

    async def SetBudgetJson(self, request, context):
        strict_json.refuse_query(context)  # the twin takes no query parameters (strict_json)
        typed = budget_body.parse(request.body.data)
        return json_view.http_body(await self.SetBudget(typed, context))

    async def LeaseBudget(self, request, context):
        grant = await self._budgets.lease(
            request.key_id, request.tenant_id, request.replica_id,
            Amounts(request.amount_micros_usd, request.amount_tokens))
        return convert.lease(grant)

    async def ReturnBudget(self, request, context):
        back = await self._budgets.give_back(
            request.lease_id, Amounts(request.unused_micros_usd, request.unused_tokens))
        return billing_pb2.ReturnBudgetResponse(returned_micros_usd=back.micros_usd,
                                                returned_tokens=back.tokens)

    async def BatchGetPrices(self, request, context):
        now = utc_now()
        return billing_pb2.BatchGetPricesResponse(prices=[
            convert.price(q, self._prices.quote(convert.model_ref(q), now))
            for q in request.queries])


def _path_names_key(context: grpc.aio.ServicerContext) -> bool:
    for key, value in context.invocation_metadata() or ():
        if key == "x-envoy-original-path" and isinstance(value, str):  # set by the edge
            return value.partition("?")[0].rstrip("/") != "/api/billing/budget"
    return False


def _presented_key(context: grpc.aio.ServicerContext) -> str:
    """The caller's API key from the call's metadata; empty when there is none."""
    return bearer_key(context.invocation_metadata())
