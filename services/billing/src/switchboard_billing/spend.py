"""Spend and usage queries, limited to what the caller's key may see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from switchboard_common.pagination import Cursor

from switchboard_billing import periods
from switchboard_billing.access import Access
from switchboard_billing.domain import Spend, TimeWindow, UsageFilter, UsagePage, utc_now
from switchboard_billing.repository import UsageRepository


class SpendQueries:
    def __init__(self, access: Access, repo: UsageRepository,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._access = access
        self._repo = repo
        self._clock = clock

    async def spend(self, secret: str, wanted: UsageFilter,
                    window: TimeWindow = TimeWindow()) -> Spend:
        return await self._repo.spend(await self._allowed(secret, wanted, window))

    async def usage(self, secret: str, wanted: UsageFilter, before: Cursor | None, page_size: int,
                    window: TimeWindow = TimeWindow()) -> UsagePage:
        wanted = await self._allowed(secret, wanted, window)
        # One row more than asked tells whether another page exists.
        rows = await self._repo.list_usage(wanted, before, page_size + 1)
        page = rows[:page_size]
        more = len(rows) > page_size
        return UsagePage(entries=page, next_cursor=(
            (page[-1].occurred_at, page[-1].request_id) if more else None))

    async def _allowed(self, secret: str, wanted: UsageFilter, window: TimeWindow) -> UsageFilter:
        """The filter narrowed to what the caller may read, over the window resolved now."""
        caller = await self._access.caller(secret)
        start, end = periods.bounds(window, self._clock())
        return replace(wanted, key_id=self._access.key_scope(caller, wanted.key_id),
                       start_time=start, end_time=end)
