"""A key's budget fields, handed to billing, the one place budgets live and are enforced (the
routers reserve from billing's leases). Auth keeps no copy: GetBudget is the answer.

The typed client of billing's SetBudget and GetBudget, called with the admin caller's own key
(billing applies the same role rules), with a deadline on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from switchboard.billing.v1 import billing_pb2, billing_pb2_grpc

from switchboard_common import errors, grpc_client
from switchboard_common.errors import InvalidRequest

SERVICE = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name
_Period = billing_pb2.BudgetPeriod.ValueType


@dataclass(frozen=True, slots=True)
class BudgetFields:
    """Micro-dollar limits a key body gave; None: not given (kept by a PATCH), 0 in a PATCH
    removes that period's dollar limit."""

    total: int | None = None
    daily: int | None = None
    monthly: int | None = None

    def given(self) -> bool:
        return any(v is not None for v in (self.total, self.daily, self.monthly))


class KeyBudgets:
    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE)
        self._stub = billing_pb2_grpc.BillingServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def create(self, secret: str, key_id: str, fields: BudgetFields) -> None:
        """A new key's budget. Raises billing's error (or 503) when it is not set."""
        request = billing_pb2.SetBudgetRequest(key_id=key_id)
        _apply(request, fields, removing=False)
        await self._call(self._stub.SetBudget, request, secret)

    async def update(self, secret: str, key_id: str, fields: BudgetFields) -> None:
        """Change the periods given and keep the rest of the key's budget as billing holds it."""
        current = await self._call(self._stub.GetBudget,
                                   billing_pb2.GetBudgetRequest(key_id=key_id), secret)
        if current.webhook_url:
            raise InvalidRequest(
                "This key's budget has an alert webhook, whose secret billing never returns: "
                "change its limits with /api/billing/budget, which takes the whole budget.",
                param="max_budget_micros_usd" if fields.total is not None else
                "monthly_budget_micros_usd" if fields.monthly is not None else
                "daily_budget_micros_usd", code="invalid_value")
        request = billing_pb2.SetBudgetRequest(
            key_id=key_id, alert_thresholds_percent=current.alert_thresholds_percent)
        for limit in current.limits:
            _keep(request, limit)
        _apply(request, fields, removing=True)
        await self._call(self._stub.SetBudget, request, secret)

    async def _call(self, method, request, secret: str):
        try:
            return await method(request, timeout=self._timeout,
                                metadata=(("authorization", f"Bearer {secret}"),))
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, service="billing") from None

    async def close(self) -> None:
        await self._channel.close()


def _keep(request: billing_pb2.SetBudgetRequest, limit: billing_pb2.BudgetLimit) -> None:
    """One period of the budget billing holds, written back as it is."""
    usd = limit.limit_micros_usd if limit.HasField("limit_micros_usd") else None
    tokens = limit.limit_tokens if limit.HasField("limit_tokens") else None
    if limit.period == billing_pb2.BUDGET_PERIOD_TOTAL:
        request.period = billing_pb2.BUDGET_PERIOD_TOTAL
        request.limit_micros_usd = usd or 0
        if tokens is not None:
            request.limit_tokens = tokens
        return
    name = "daily" if limit.period == billing_pb2.BUDGET_PERIOD_DAILY else "monthly"
    if usd is not None:
        setattr(request, f"{name}_limit_micros_usd", usd)
    if tokens is not None:
        setattr(request, f"{name}_limit_tokens", tokens)


def _apply(request: billing_pb2.SetBudgetRequest, fields: BudgetFields, *, removing: bool) -> None:
    for name, value in (("daily", fields.daily), ("monthly", fields.monthly)):
        if value is None:
            continue
        if removing and value == 0:
            request.ClearField(f"{name}_limit_micros_usd")  # type: ignore[arg-type]
        else:
            setattr(request, f"{name}_limit_micros_usd", value)
    if fields.total is None:
        return
    tokens = request.limit_tokens if request.HasField("limit_tokens") else None
    if removing and fields.total == 0:
        if tokens is None:
            request.ClearField("period")
        request.limit_micros_usd = 0  # with a token limit: dollars not limited (billing's rule)
        return
    request.period = billing_pb2.BUDGET_PERIOD_TOTAL
    request.limit_micros_usd = fields.total
