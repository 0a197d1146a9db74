"""Spend and usage queries, limited to what the caller's key may see."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from switchboard_common.errors import InvalidRequest

from switchboard_billing.access import Access
from switchboard_billing.domain import Spend, SpendFilter, UsagePage
from switchboard_billing.repository import UsageRepository


class SpendQueries:
    def __init__(self, access: Access, repo: UsageRepository) -> None:
        self._access = access
        self._repo = repo

    async def spend(self, secret: str, wanted: SpendFilter) -> Spend:
        caller = await self._access.caller(secret)
        wanted = replace(wanted, key_id=self._access.key_scope(caller, wanted.key_id))
        if wanted.start_time and wanted.end_time and wanted.start_time >= wanted.end_time:
            raise InvalidRequest("end_time must be after start_time.", param="end_time")
        return await self._repo.spend(wanted)

    async def usage(self, secret: str, key_id: str, tenant_id: str,
                    before: tuple[datetime, str] | None, page_size: int) -> UsagePage:
        caller = await self._access.caller(secret)
        key_id = self._access.key_scope(caller, key_id)
        # One row more than asked tells whether another page exists.
        rows = await self._repo.list_usage(key_id, tenant_id, before, page_size + 1)
        page = rows[:page_size]
        more = len(rows) > page_size
        return UsagePage(entries=page, next_cursor=(
            (page[-1].occurred_at, page[-1].request_id) if more else None))
