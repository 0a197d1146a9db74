"""The typed client of billing's lease and price RPCs, with a deadline on every call. Only
budgets.py and prices.py use it, and never per request while a slice or a price lasts."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc
from switchboard_common import errors, grpc_client

SERVICE = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name


class BillingClient:
    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE)
        self._stub = billing_pb2_grpc.BillingServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def lease(self, key_id: str, tenant_id: str, replica_id: str, micros_usd: int,
                    tokens: int) -> billing_pb2.LeaseBudgetResponse:
        return await self._call(self._stub.LeaseBudget, billing_pb2.LeaseBudgetRequest(
            key_id=key_id, tenant_id=tenant_id, replica_id=replica_id,
            amount_micros_usd=micros_usd, amount_tokens=tokens))

    async def give_back(self, lease_id: str, micros_usd: int,
                        tokens: int) -> billing_pb2.ReturnBudgetResponse:
        return await self._call(self._stub.ReturnBudget, billing_pb2.ReturnBudgetRequest(
            lease_id=lease_id, unused_micros_usd=micros_usd, unused_tokens=tokens))

    async def prices(self, queries: Sequence[billing_pb2.PriceQuery]) -> list[billing_pb2.Price]:
        reply = await self._call(self._stub.BatchGetPrices,
                                 billing_pb2.BatchGetPricesRequest(queries=queries))
        return list(reply.prices)

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, service="billing") from None

    async def close(self) -> None:
        await self._channel.close()
