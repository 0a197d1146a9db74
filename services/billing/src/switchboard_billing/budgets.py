"""Budgets: setting and reading a key's or tenant's budget (checked against the caller's role),
and the lease loop's use cases, granting, giving back and reclaiming slices."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from urllib.parse import urlsplit

import structlog

from switchboard_common.errors import InvalidRequest

from switchboard_billing.access import Access
from switchboard_billing.budget_store import BudgetStore
from switchboard_billing.domain import BUDGET_PERIODS, BudgetSpec, LeaseGrant, Standing, utc_now
from switchboard_billing.leases import Amounts, Leases

_log = structlog.get_logger("budgets")
MAX_THRESHOLDS = 10


def scope_of(key_id: str, tenant_id: str) -> tuple[str, str]:
    """("key", id) or ("tenant", id): exactly one of the two names a budget."""
    if bool(key_id) == bool(tenant_id):
        raise InvalidRequest("Name exactly one of key_id and tenant_id.",
                             param="tenant_id" if key_id else "key_id", code="invalid_value")
    return ("key", key_id) if key_id else ("tenant", tenant_id)


def check_spec(spec: BudgetSpec) -> None:
    for period, (usd, tokens) in spec.limits.items():
        if period not in BUDGET_PERIODS:
            raise InvalidRequest(f"Unknown budget period '{period}'.", param="period")
        for value, unit in ((usd, "micros_usd"), (tokens, "tokens")):
            if value is not None and value < 0:
                raise InvalidRequest(f"A {period} limit cannot be negative.",
                                     param=f"{period}_limit_{unit}", code="invalid_value")
    if len(spec.alert_thresholds) > MAX_THRESHOLDS or any(
            not 1 <= t <= 1000 for t in spec.alert_thresholds):
        raise InvalidRequest(f"alert_thresholds_percent: at most {MAX_THRESHOLDS} values, each "
                             "1..1000.", param="alert_thresholds_percent", code="invalid_value")
    if spec.webhook_url:
        parts = urlsplit(spec.webhook_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidRequest("webhook_url must be an http:// or https:// URL.",
                                 param="webhook_url", code="invalid_value")
    elif spec.webhook_secret:
        raise InvalidRequest("webhook_secret without webhook_url: nothing would use it.",
                             param="webhook_secret", code="invalid_value")


class BudgetService:
    def __init__(self, access: Access, store: BudgetStore, leases: Leases,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._access = access
        self._store = store
        self._leases = leases
        self._clock = clock

    async def get(self, secret: str, scope: str, scope_id: str) -> list[Standing]:
        caller = await self._access.caller(secret)
        await self._access.check_budget(secret, caller, scope, scope_id, change=False)
        return await self._store.standings(scope, scope_id, self._clock())

    async def set(self, secret: str, spec: BudgetSpec) -> list[Standing]:
        caller = await self._access.caller(secret)
        await self._access.check_budget(secret, caller, spec.scope, spec.scope_id, change=True)
        check_spec(spec)
        now = self._clock()
        await self._store.replace(spec, now)
        _log.info("budget set", scope=spec.scope, scope_id=spec.scope_id,
                  periods=sorted(spec.limits), webhook=bool(spec.webhook_url))
        return await self._store.standings(spec.scope, spec.scope_id, now)

    async def lease(self, key_id: str, tenant_id: str, replica_id: str,
                    want: Amounts) -> LeaseGrant:
        if not key_id or not replica_id:
            raise InvalidRequest("key_id and replica_id are required.",
                                 param="key_id" if not key_id else "replica_id")
        if want.micros_usd < 0 or want.tokens < 0:
            raise InvalidRequest("A lease amount cannot be negative.", param="amount_micros_usd")
        return await self._leases.lease(key_id, tenant_id, replica_id, want, self._clock())

    async def give_back(self, lease_id: str, unused: Amounts) -> Amounts:
        if not lease_id:
            raise InvalidRequest("lease_id is required.", param="lease_id")
        return await self._leases.give_back(lease_id, Amounts(max(unused.micros_usd, 0),
                                                              max(unused.tokens, 0)))


class Reclaimer:
    """Every `interval` seconds, leases their replica stopped renewing give back what they hold."""

    def __init__(self, leases: Leases, interval: float, grace: float) -> None:
        self._leases = leases
        self._interval = interval
        self._grace = grace
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lease-reclaimer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                count = await self._leases.reclaim(utc_now(), self._grace)
            except Exception as exc:  # noqa: BLE001 - tried again next interval
                _log.warning("reclaiming leases failed", error=type(exc).__name__,
                             detail=str(exc)[:200])
                continue
            if count:
                _log.info("leases reclaimed", leases=count)
