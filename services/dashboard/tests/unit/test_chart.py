"""The usage chart: one bar per hour of the window, one segment per model, heights in proportion."""

from __future__ import annotations

from datetime import UTC, datetime

from switchboard_dashboard import chart

NOW = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)


def _group(hour: str, model: str, requests: int, cost_micros: int = 0) -> dict:
    return {"hour": hour, "model": model, "totals": {"requests": requests, "cost_micros_usd": cost_micros}}


def test_hours_are_billings_bucket_names_ending_with_the_current_one():
    buckets = chart.hours(NOW, 3)
    assert buckets == ["2026-12-01T20:00:00Z", "2026-12-01T21:00:00Z", "2026-12-01T22:00:00Z"]


def test_segments_stack_per_hour_and_scale_to_the_tallest_bar():
    buckets = chart.hours(NOW, 3)
    groups = [_group(buckets[2], "a", 3), _group(buckets[2], "b", 1), _group(buckets[0], "a", 2),
              _group("2026-11-01T00:00:00Z", "a", 50)]  # outside the window: not drawn
    built = chart.build(groups, buckets, "requests")
    assert built.y_max == 4
    assert [m for m, _ in built.legend] == ["a", "b"]
    plot_h = chart.HEIGHT - chart.BOTTOM - chart.TOP
    last = [s for s in built.segments if "22:00" in s.title]
    assert sorted(round(s.height, 6) for s in last) == [round(plot_h / 4, 6), round(plot_h * 3 / 4, 6)]
    assert round(sum(s.height for s in last), 6) == plot_h  # the tallest bar fills the plot
    assert last[0].y + last[0].height == chart.HEIGHT - chart.BOTTOM  # the first segment sits on the axis
    assert last[1].y + last[1].height == last[0].y
    assert len({s.color for s in built.segments}) == 2


def test_cost_is_charted_in_dollars_and_an_empty_window_draws_nothing():
    buckets = chart.hours(NOW, 2)
    built = chart.build([_group(buckets[1], "m", 1, cost_micros=1_500_000)], buckets, "cost")
    assert built.y_max == 1.5 and "$1.500000" in built.segments[0].title
    empty = chart.build([_group(buckets[1], "m", 0)], buckets, "requests")
    assert empty.empty and empty.y_max == 0
