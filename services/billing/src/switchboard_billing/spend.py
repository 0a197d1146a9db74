"""Spend reports, usage pages and exports, limited to what the caller's key may see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from switchboard_common.errors import InvalidRequest
from switchboard_common.pagination import Cursor

from switchboard_billing import periods
from switchboard_billing.access import Access
from switchboard_billing.domain import (
    GROUPS,
    Spend,
    TimeWindow,
    UsageEntry,
    UsageFilter,
    UsagePage,
    utc_now,
)
from switchboard_billing.repository import UsageRepository


class SpendQueries:
    def __init__(self, access: Access, repo: UsageRepository,
                 clock: Callable[[], datetime] = utc_now, export_batch_rows: int = 1000) -> None:
        self._access = access
        self._repo = repo
        self._clock = clock
        self._export_batch = export_batch_rows

    async def spend(self, secret: str, wanted: UsageFilter,
                    window: TimeWindow = TimeWindow(), group_by: Sequence[str] = ()) -> Spend:
        groups = parse_group_by(group_by)
        return await self._repo.spend(await self._allowed(secret, wanted, window), groups)

    async def usage(self, secret: str, wanted: UsageFilter, before: Cursor | None, page_size: int,
                    window: TimeWindow = TimeWindow()) -> UsagePage:
        wanted = await self._allowed(secret, wanted, window)
        # One row more than asked tells whether another page exists.
        rows = await self._repo.list_usage(wanted, before, page_size + 1)
        page = rows[:page_size]
        more = len(rows) > page_size
        return UsagePage(entries=page, next_cursor=(
            (page[-1].occurred_at, page[-1].event_id) if more else None))

    async def export(self, secret: str, wanted: UsageFilter,
                     window: TimeWindow = TimeWindow()) -> AsyncIterator[list[UsageEntry]]:
        """Every record the caller may see under the filters, oldest first, in batches. Access
        is checked before the first batch, so a refusal is an error, not an empty export."""
        allowed = await self._allowed(secret, wanted, window)
        return self._repo.iter_usage(allowed, self._export_batch)

    async def _allowed(self, secret: str, wanted: UsageFilter, window: TimeWindow) -> UsageFilter:
        """The filter narrowed to what the caller may read, over the window resolved now."""
        caller = await self._access.caller(secret)
        start, end = periods.bounds(window, self._clock())
        return replace(self._access.usage_scope(caller, wanted), start_time=start, end_time=end)


def parse_group_by(values: Sequence[str]) -> list[str]:
    """group_by as given (repeated, or comma-separated), checked and without repeats."""
    out: list[str] = []
    for value in values:
        for name in (part.strip().lower() for part in value.split(",")):
            if not name:
                continue
            if name not in GROUPS:
                raise InvalidRequest(f"group_by takes {', '.join(GROUPS)}; got '{name[:40]}'.",
                                     param="group_by", code="invalid_value")
            if name not in out:
                out.append(name)
    return out
