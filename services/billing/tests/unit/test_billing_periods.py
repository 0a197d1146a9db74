"""Time windows of spend queries: periods, YYYY-MM-DD dates and explicit times, all UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from switchboard_common.errors import InvalidRequest

from switchboard_billing.domain import TimeWindow
from switchboard_billing.periods import bounds

NOW = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(("window", "now", "expected"), [
    (TimeWindow(), NOW, (None, None)),
    (TimeWindow(period="total"), NOW, (None, None)),
    (TimeWindow(period="daily"), NOW, (utc(2024, 12, 31), utc(2025, 1, 1))),
    (TimeWindow(period="monthly"), NOW, (utc(2024, 12, 1), utc(2025, 1, 1))),
    (TimeWindow(period=" Monthly "), utc(2024, 2, 29, 12), (utc(2024, 2, 1), utc(2024, 3, 1))),
    (TimeWindow(period="monthly"), utc(2025, 1, 31), (utc(2025, 1, 1), utc(2025, 2, 1))),
    # "Now" is placed in UTC whatever zone the clock reports: 2025-01-01T01:00+02:00 is still
    # 2024-12-31 in UTC.
    (TimeWindow(period="daily"), datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=2))),
     (utc(2024, 12, 31), utc(2025, 1, 1))),
])
def test_periods_are_the_current_calendar_period_in_utc(window, now, expected):
    assert bounds(window, now) == expected


def test_dates_cover_whole_days_with_the_end_date_included():
    assert bounds(TimeWindow(start_date="2024-01-01", end_date="2024-01-31"), NOW) == (
        utc(2024, 1, 1), utc(2024, 2, 1))
    assert bounds(TimeWindow(start_date="2024-02-29", end_date="2024-02-29"), NOW) == (
        utc(2024, 2, 29), utc(2024, 3, 1))  # one day
    assert bounds(TimeWindow(start_date="2024-01-01"), NOW) == (utc(2024, 1, 1), None)
    assert bounds(TimeWindow(end_date="2024-01-31"), NOW) == (None, utc(2024, 2, 1))
    assert bounds(TimeWindow(end_date="9999-12-31"), NOW) == (None, None)  # no overflow


def test_explicit_times_win_over_dates_and_period_side_by_side():
    t1, t2 = utc(2024, 1, 10, 8, 30), utc(2024, 1, 20, 17)
    assert bounds(TimeWindow(start_time=t1, end_time=t2, start_date="2023-01-01",
                             end_date="2025-01-01"), NOW) == (t1, t2)
    assert bounds(TimeWindow(start_time=t1, end_date="2024-01-31"), NOW) == (t1, utc(2024, 2, 1))
    assert bounds(TimeWindow(end_time=t2, start_date="2024-01-15"), NOW) == (utc(2024, 1, 15), t2)
    assert bounds(TimeWindow(start_time=utc(2024, 12, 5), period="monthly"), NOW) == (
        utc(2024, 12, 5), utc(2025, 1, 1))


@pytest.mark.parametrize(("window", "param"), [
    (TimeWindow(start_date="2024-13-01"), "start_date"),
    (TimeWindow(start_date="2024-02-30"), "start_date"),
    (TimeWindow(start_date="2024-1-01"), "start_date"),
    (TimeWindow(start_date="20240101"), "start_date"),  # ISO basic format: not the shape we take
    (TimeWindow(start_date="2024-01-01T00:00:00"), "start_date"),
    (TimeWindow(end_date="yesterday"), "end_date"),
    (TimeWindow(start_date="2024-01-01", end_date="2024-00-10"), "end_date"),
    (TimeWindow(period="yearly"), "period"),
    (TimeWindow(period="monthly", start_date="2024-01-01"), "period"),  # ambiguous
    (TimeWindow(period="daily", end_date="2024-01-01"), "period"),
    (TimeWindow(start_date="2024-01-31", end_date="2024-01-30"), "end_date"),
    (TimeWindow(start_time=utc(2024, 1, 2), end_time=utc(2024, 1, 2)), "end_time"),
    (TimeWindow(start_time=utc(2024, 1, 2), end_date="2023-12-31"), "end_date"),
    (TimeWindow(start_time=utc(2025, 1, 1), period="monthly"), "start_time"),
    (TimeWindow(start_date="2025-01-01", end_time=utc(2024, 6, 1)), "end_time"),
])
def test_bad_windows_name_the_param(window, param):
    with pytest.raises(InvalidRequest) as err:
        bounds(window, NOW)
    assert err.value.param == param
    assert err.value.http_status == 400
