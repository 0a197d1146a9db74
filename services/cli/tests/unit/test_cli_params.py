"""Argument types and connection settings: durations, expiries, model lists, KEY=VALUE, the URL and
where the key comes from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import click
import pytest

from switchboard_cli.params import Duration, Expiry, ExpiryType, KeyValue, parse_duration, split_models
from switchboard_cli.session import gateway_url, local_master_key


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("2w", 1209600),
    ("1h30m", 5400), ("1D", 86400), (" 45m ", 2700), ("0s", 0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["3x", "30", "", "1.5h", "-1h", "h", "1h 30m", "30 d"])
def test_a_bad_duration_says_what_is_accepted(text):
    with pytest.raises(ValueError, match="is not a duration: use a number with a unit"):
        parse_duration(text)


def test_duration_type_fails_as_a_click_usage_error():
    with pytest.raises(click.BadParameter, match="'3x' is not a duration"):
        Duration().convert("3x", None, None)


def test_expiry_from_a_duration_a_date_or_a_time():
    expiry = ExpiryType(allow_never=False)
    assert expiry.convert("30d", None, None) == Expiry(in_seconds=2592000)
    assert expiry.convert("30d", None, None).body() == {"expires_in_seconds": 2592000}
    # A date alone is midnight UTC; a time without an offset is UTC; an offset is kept.
    assert expiry.convert("2027-01-31", None, None).body() == {"expires_at": "2027-01-31T00:00:00Z"}
    assert expiry.convert("2027-01-31T12:30:00", None, None).at == datetime(2027, 1, 31, 12, 30, tzinfo=UTC)
    assert expiry.convert("2027-01-31T12:30:00Z", None, None).body() == {"expires_at": "2027-01-31T12:30:00Z"}
    at = expiry.convert("2027-01-31T14:30:00+02:00", None, None)
    assert at.at == datetime(2027, 1, 31, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert at.body() == {"expires_at": "2027-01-31T12:30:00Z"}


def test_never_removes_an_expiry_in_updates_only():
    assert ExpiryType(allow_never=True).convert("never", None, None).body() == {
        "expires_at": "1970-01-01T00:00:00Z"}  # the API's "no expiry"
    with pytest.raises(click.BadParameter, match="leave --expires out"):
        ExpiryType(allow_never=False).convert("never", None, None)


def test_a_bad_expiry_names_both_forms():
    with pytest.raises(click.BadParameter) as caught:
        ExpiryType(allow_never=True).convert("3x", None, None)
    message = caught.value.message
    assert "'3x' is neither a duration nor a date" in message
    assert "30d" in message and "2027-01-31" in message and "never" in message


def test_models_repeated_or_comma_separated_keep_their_order():
    assert split_models(None, None, ("gpt-4o*, anthropic/*", "switchboard-local", " ,")) == [
        "gpt-4o*", "anthropic/*", "switchboard-local"]
    assert split_models(None, None, ()) == []


def test_key_value():
    assert KeyValue().convert("team=search", None, None) == ("team", "search")
    assert KeyValue().convert("url=a=b", None, None) == ("url", "a=b")
    assert KeyValue().convert("team=", None, None) == ("team", "")  # removes it in an update
    for bad in ("team", "=x"):
        with pytest.raises(click.BadParameter, match="is not KEY=VALUE"):
            KeyValue().convert(bad, None, None)


@pytest.mark.parametrize("raw, url", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"),  # the base URL the openai SDK takes
    ("https://gw.example.com/v1/", "https://gw.example.com"),
    ("https://gw.example.com/switchboard", "https://gw.example.com/switchboard"),
])
def test_gateway_url(raw, url):
    assert gateway_url(raw) == url


@pytest.mark.parametrize("raw", ["127.0.0.1:8080", "ftp://gw", "http://", "gw.example.com"])
def test_a_bad_gateway_url(raw):
    with pytest.raises(ValueError, match="URL"):
        gateway_url(raw)


def test_the_local_master_key_is_offered_to_loopback_only(tmp_path):
    (tmp_path / "master-key").write_text("sk-sb-master-local\n")
    for url in ("http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:8080"):
        assert local_master_key(url, tmp_path) == "sk-sb-master-local"
    assert local_master_key("https://gw.example.com", tmp_path) is None
    assert local_master_key("http://127.0.0.1:8080", tmp_path / "missing") is None
