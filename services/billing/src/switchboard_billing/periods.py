"""Calendar periods in UTC: the time windows of spend and usage queries (explicit times, periods
named as AILB names them: daily, weekly, monthly, total; YYYY-MM-DD dates), and the periods
budgets reset on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from switchboard_common.errors import InvalidRequest

from switchboard_billing.domain import TimeWindow

PERIODS = ("daily", "weekly", "monthly", "total")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # where a "total" budget's one period starts
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Bound = tuple[datetime | None, str]  # the instant (None: open) and the param it came from


def bounds(window: TimeWindow, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The window as [start, end) in UTC, None for an open side.

    `now` places the period (today, this month). Each side is taken from the first of time,
    date, period that sets it; a period together with dates is refused as ambiguous.
    """
    period_start, period_end = _period(window.period, now)
    if window.period and (window.start_date or window.end_date):
        raise InvalidRequest("Set period or start_date/end_date, not both.", param="period")
    start_day = _day(window.start_date, "start_date")
    end_day = _day(window.end_date, "end_date")
    start = _first((window.start_time, "start_time"), (_midnight(start_day), "start_date"),
                   (period_start, "period"))
    end = _first((window.end_time, "end_time"), (_midnight(end_day, days_after=1), "end_date"),
                 (period_end, "period"))
    _check_not_empty(start, end)
    return start[0], end[0]


def _period(value: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    name = value.strip().lower()
    if not name or name == "total":
        return None, None
    if name in ("daily", "weekly", "monthly"):
        start = period_start(name, now)
        return start, period_end(name, start)
    raise InvalidRequest(f"period must be one of {', '.join(PERIODS)}; got '{value[:40]}'.",
                         param="period")


def period_start(name: str, now: datetime) -> datetime:
    """The start of the calendar period `name` (daily, weekly from Monday, monthly, total)
    that holds `now`."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    if name == "daily":
        return today
    if name == "weekly":
        return today - timedelta(days=today.weekday())
    if name == "monthly":
        return today.replace(day=1)
    if name == "total":
        return EPOCH
    raise ValueError(f"unknown period {name!r}")


def period_end(name: str, start: datetime) -> datetime | None:
    """When the period that began at `start` ends (None: never, for total)."""
    if name == "daily":
        return start + timedelta(days=1)
    if name == "weekly":
        return start + timedelta(days=7)
    if name == "monthly":
        return (start + timedelta(days=32)).replace(day=1)
    return None


def _day(value: str, param: str) -> date | None:
    if not value:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{param} must be a date as YYYY-MM-DD; got '{value[:40]}'.",
                             param=param) from None


def _midnight(day: date | None, days_after: int = 0) -> datetime | None:
    if day is None:
        return None
    try:
        return datetime.combine(day + timedelta(days=days_after), time(), tzinfo=UTC)
    except OverflowError:
        return None  # the day after 9999-12-31: leave that side open


def _first(*candidates: Bound) -> Bound:
    for instant, param in candidates:
        if instant is not None:
            return instant, param
    return None, ""


def _check_not_empty(start: Bound, end: Bound) -> None:
    (start_at, start_param), (end_at, end_param) = start, end
    if start_at is None or end_at is None or start_at < end_at:
        return
    if (start_param, end_param) == ("start_date", "end_date"):
        raise InvalidRequest("end_date must not be before start_date.", param="end_date")
    if end_param == "period":
        raise InvalidRequest(f"{start_param} is after the end of the period.", param=start_param)
    raise InvalidRequest(f"{end_param} must be after {start_param}.", param=end_param)
