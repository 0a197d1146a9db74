"""The pii check: every card scheme presidio misses, international phones, secrets, thresholds
and the allow-list, no false positives on number-dense text, and no network at start."""

from __future__ import annotations

import socket

import pytest

from switchboard_guardrails.checks.pii.engine import ENTITIES, PiiEngine
from switchboard_guardrails.checks.pii.recognizers import luhn_ok
from switchboard_guardrails.offline import pii_sets

ALL = list(ENTITIES)


def found(pii, text: str, **kw) -> list[tuple[str, str]]:
    return [(m.entity, text[m.start:m.end]) for m in pii.analyze(text, kw.pop("entities", ALL),
                                                                kw.pop("thresholds", {}), **kw)]


@pytest.mark.parametrize("number", [
    "2221 0000 0000 0009",  # Mastercard 2-series
    "5018 0000 0000 0009",  # Maestro
    "6759 6498 2643 8453",  # Maestro (UK)
    "4111 1111 1111 1111 003",  # Visa, 19 digits
    "4222222222222",  # Visa, 13 digits
    "3782-822463-10005",  # American Express, 4-6-5
    "2200 0000 0000 0004",  # Mir
])
def test_cards_of_every_scheme_are_found(pii, number):
    assert luhn_ok(number.replace(" ", "").replace("-", ""))
    assert found(pii, f"my card is {number} thanks") == [("credit_card", number)]


def test_a_number_that_fails_luhn_or_the_scheme_is_not_a_card(pii):
    assert found(pii, "tracking 4111 1111 1111 1112 shipped") == []
    assert found(pii, "order 9111111111111111 shipped") == []  # no scheme starts with 9


@pytest.mark.parametrize("text, value", [
    ("call +44 20 7946 0958 today", "+44 20 7946 0958"),
    ("ruf mich an: +49 30 901820", "+49 30 901820"),
    ("or 0033 1 42 68 53 00", "0033 1 42 68 53 00"),
    ("US office (415) 555-0132 ext 12", "(415) 555-0132 ext 12"),
])
def test_phones_national_and_international(pii, text, value):
    assert found(pii, text, entities=["phone"]) == [("phone", value)]


def test_secrets_and_private_keys(pii):
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    text = (f"use sk-proj-{'a1' * 24} and AKIAIOSFODNN7EXAMPLE; aws_secret_access_key = "
            f"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY and {key}")
    assert [e for e, _ in found(pii, text)] == ["api_key", "api_key", "api_key", "private_key"]
    assert ("api_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") in found(pii, text)


def test_switchboards_own_keys_are_secrets(pii):
    secret = "sk-sb-" + "Q3xv9_Zr-" * 5
    assert found(pii, f"my gateway key is {secret} ok") == [("api_key", secret)]


def test_ip_addresses_are_not_phone_numbers(pii):
    assert found(pii, "server 173.73.238.121 and 2001:db8::8a2e:370:7334") == [
        ("ip_address", "173.73.238.121"), ("ip_address", "2001:db8::8a2e:370:7334")]


def test_thresholds_and_the_allow_list_apply_per_call(pii):
    text = "mail help@example.com or bob@example.org, ref 4155550132"
    assert ("phone", "4155550132") in found(pii, text)  # bare digits score 0.5
    assert ("phone", "4155550132") in found(pii, "call 4155550132", thresholds={"phone": 0.6})  # context
    assert [v for _, v in found(pii, text, thresholds={"phone": 0.6})] == ["help@example.com",
                                                                           "bob@example.org"]
    assert [v for _, v in found(pii, text, entities=["email"], allow_list=["help@example.com"])] == [
        "bob@example.org"]


def test_no_false_positives_on_number_dense_text(pii):
    flagged = [t for t in pii_sets.hard_negatives(300) if found(pii, t)]
    assert flagged == []


def test_synthetic_positives_are_all_found(pii):
    misses = [(e, t[s:end]) for e, t, s, end, _ in pii_sets.positives(15, seed=3)
              if not any(m.entity == e and m.start < end and m.end > s for m in pii.analyze(t, ALL, {}))]
    assert misses == []


def test_the_engine_never_goes_online(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the PII engine tried to open a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    engine = PiiEngine()
    assert found(engine, "write to ann@example.co.uk") == [("email", "ann@example.co.uk")]


def test_hold_from_marks_what_could_still_grow(pii):
    assert pii.hold_from("card 4111 11") == 5
    assert pii.hold_from("write to john") == len("write to ")
    assert pii.hold_from("hello. ") == len("hello. ")
    assert pii.hold_from("card 4111 1111 1111 ") == 5  # complete for the pattern, not yet a card
