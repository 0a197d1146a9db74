"""The budgets page's reading of billing's Budget JSON: each period's share spent, and which alert
thresholds that share has crossed."""

from __future__ import annotations

from switchboard_dashboard.pages import _budget_view


def test_crossed_thresholds_per_period_and_unlimited_periods_have_none():
    budget = {"exists": True, "alert_thresholds_percent": [50, 80, 100], "webhook_url": "https://hooks.example/x",
              "limits": [
                  {"period": "BUDGET_PERIOD_DAILY", "limit_micros_usd": 2_000_000, "spent_micros_usd": 1_700_000},
                  {"period": "BUDGET_PERIOD_MONTHLY", "limit_micros_usd": 50_000_000, "spent_micros_usd": 1_700_000},
                  {"period": "BUDGET_PERIOD_TOTAL", "limit_tokens": 1000, "spent_tokens": 999}]}
    view = _budget_view("key app (key_1)", budget)
    daily, monthly, total = view["limits"]
    assert (daily["period"], daily["percent"], daily["crossed"]) == ("daily", 85.0, [50, 80])
    assert monthly["period"] == "monthly" and round(monthly["percent"], 1) == 3.4 and monthly["crossed"] == []
    assert total["period"] == "total" and total["percent"] is None and total["crossed"] == []
    assert view["thresholds"] == [50, 80, 100] and view["webhook"] is True


def test_a_spent_limit_crosses_every_threshold_up_to_100():
    budget = {"alert_thresholds_percent": [90, 100],
              "limits": [{"period": "BUDGET_PERIOD_MONTHLY", "limit_micros_usd": 10, "spent_micros_usd": 10}]}
    (limit,) = _budget_view("tenant acme", budget)["limits"]
    assert limit["crossed"] == [90, 100] and limit["percent"] == 100.0
