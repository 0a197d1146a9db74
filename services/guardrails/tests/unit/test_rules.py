"""Rules as the REST body writes them and as checks compile them: plain words for actions, the
update mask from the fields named, the custom checks, redaction tokens and message texts."""

from __future__ import annotations

import orjson
import pytest

from switchboard_common.errors import InvalidRequest

from switchboard_guardrails import checks, messages
from switchboard_guardrails.checks import patterns
from switchboard_guardrails.domain import Action, Match, Rule
from switchboard_guardrails.redaction import Redaction, Tokens, redact, restore
from switchboard_guardrails.wire import normalized_body


def test_plain_words_become_enum_names_and_the_named_fields_are_listed():
    body, named = normalized_body(orjson.dumps({
        "name": "p", "inputRules": [{"check": "pii", "action": "block"}], "fail_mode": "open",
        "output_rules": [{"check": "pii", "action": "ACTION_WARN"}]}))
    data = orjson.loads(body)
    assert data["inputRules"][0]["action"] == "ACTION_BLOCK"
    assert data["output_rules"][0]["action"] == "ACTION_WARN"
    assert data["fail_mode"] == "FAIL_MODE_OPEN"
    assert named == ["name", "input_rules", "fail_mode", "output_rules"]
    assert normalized_body(b"[1, 2]") == (b"[1, 2]", [])  # strict parsing refuses it


def build(toolkit, check: str, action=Action.WARN, **options):
    rule = Rule(check, action, options)
    checks.validate(rule, "input_rules[0]", toolkit)
    return checks.build(rule, toolkit)


def spans(detector, text: str) -> list[tuple[str, str]]:
    return [(m.entity, text[m.start:m.end]) for m in detector.find(text)]


def test_keywords_match_whole_words_only(toolkit):
    detector = build(toolkit, "keywords", keywords=["secret plan", "c++"], label="internal")
    assert spans(detector, "The Secret Plan; not secret planet; I like C++!") == [
        ("internal", "Secret Plan"), ("internal", "C++")]


def test_denied_topics_name_their_topic(toolkit):
    detector = build(toolkit, "denied_topics", Action.BLOCK,
                     topics={"medical": ["diagnosis", "prescription"], "legal": ["lawsuit"]})
    assert spans(detector, "Is this a lawsuit or a diagnosis?") == [("legal", "lawsuit"), ("medical", "diagnosis")]


def test_a_regex_that_runs_too_long_counts_as_a_match(toolkit, monkeypatch):
    monkeypatch.setattr(patterns, "TIMEOUT_SECONDS", 0.001)
    detector = build(toolkit, "regex", Action.BLOCK, patterns=[r"(a|aa)+$"])  # exponential
    found = detector.find("a" * 30 + "!")
    assert [(m.entity, m.start) for m in found] == [("timeout", 0)]


@pytest.mark.parametrize("options, param", [
    ({"patterns": ["x*"]}, "input_rules[0].options"),  # matches the empty string
    ({"patterns": []}, "input_rules[0].options.patterns"),
    ({"patterns": ["a"], "label": "Not A Label"}, "input_rules[0].options.label"),
])
def test_regex_rules_are_checked_when_stored(toolkit, options, param):
    with pytest.raises(InvalidRequest) as refused:
        checks.validate(Rule("regex", Action.BLOCK, options), "input_rules[0]", toolkit)
    assert refused.value.param == param


def test_numbers_from_json_are_read_as_the_option_types(toolkit):
    checks.validate(Rule("pii", Action.REDACT, {"thresholds": {"phone": 1}}), "r", toolkit)
    with pytest.raises(InvalidRequest):
        checks.validate(Rule("length", Action.BLOCK, {"max_chars": "10"}), "r", toolkit)


def test_tokens_are_stable_per_value_and_restore():
    tokens = Tokens()
    text = "ann@x.io and bob@y.io and ann@x.io"
    found = [Match("pii", 0, 8, "email", placeholder="[EMAIL]"), Match("pii", 13, 21, "email", placeholder="[EMAIL]"),
             Match("pii", 26, 34, "email", placeholder="[EMAIL]")]
    redacted = redact(text, [Redaction(m, reversible=True) for m in found], tokens)
    assert redacted == "[EMAIL_1] and [EMAIL_2] and [EMAIL_1]"
    assert restore("hi [EMAIL_2], not [EMAIL_9]", tokens.restorations) == "hi bob@y.io, not [EMAIL_9]"


def test_message_texts_cover_strings_and_text_parts_of_every_role():
    sent = [{"role": "system", "content": "be nice"},
            {"role": "user", "content": [{"type": "text", "text": "hi"},
                                         {"type": "image_url", "image_url": {"url": "u"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "result"},
            {"role": "assistant", "content": None}]
    refs = messages.texts(sent)
    assert [(r.message_index, r.part_index, r.text) for r in refs] == [
        (0, -1, "be nice"), (1, 0, "hi"), (2, -1, "result")]
    changed = messages.with_texts(sent, {(1, 0): "HI", (2, -1): "RESULT"})
    assert changed[1]["content"][0]["text"] == "HI" and changed[2]["content"] == "RESULT"
    assert sent[1]["content"][0]["text"] == "hi"  # the request itself is left alone
