"""How values print: limits, 64-bit numbers as the API spells them, timestamps, a key's status."""

from __future__ import annotations

from switchboard_cli import limits
from switchboard_cli.commands.keys import status
from switchboard_cli.output import number, when


def test_limits_in_flag_order_with_thousands():
    assert limits.describe({"max_parallel_requests": 8, "tokens_per_day": "2000000",
                            "requests_per_minute": 60, "tokens_per_minute": 100000}) == (
        "rpm 60, tpm 100,000, tpd 2,000,000, parallel 8")
    assert limits.describe({}) == "-" and limits.describe(None) == "-"


def test_limit_options_become_the_apis_rate_limits():
    given = {"requests_per_minute": 60, "tokens_per_minute": None, "tokens_per_day": 0,
             "max_parallel_requests": None, "name": "app"}
    assert limits.take(given) == {"requests_per_minute": 60, "tokens_per_day": 0}
    assert given == {"name": "app"}  # what is not a limit stays for the command


def test_numbers_and_times():
    assert number("2000000") == "2,000,000" and number(60) == "60" and number("n/a") == "n/a"
    assert when("2026-12-01T12:24:44.289878Z") == "2026-12-01 12:24:44 UTC"
    assert when("2026-12-01T12:24:44Z", seconds=False) == "2026-12-01 12:24 UTC"
    assert when(None) == "-" and when("not a time") == "not a time"


def test_status():
    assert status({"expires_at": "2099-01-01T00:00:00Z"}) == "active"
    assert status({}) == "active"
    assert status({"expires_at": "2020-01-01T00:00:00Z"}) == "expired"
    assert status({"expires_at": "2099-01-01T00:00:00Z", "revoked_at": "2026-01-01T00:00:00Z"}) == "revoked"
