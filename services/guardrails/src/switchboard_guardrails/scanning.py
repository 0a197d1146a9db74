"""Applying policies' rules to a request's messages or to a whole answer: every finding under its
rule's action, the verdict the strongest of them, redactions written when nothing blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from switchboard_guardrails import messages as msgs
from switchboard_guardrails.checks.base import Detector
from switchboard_guardrails.domain import Action, FailMode, Finding, Match, Rule, strongest
from switchboard_guardrails.redaction import Redaction, Tokens, redact, restore


@dataclass(frozen=True)
class CompiledRule:
    policy_id: str
    rule: Rule
    detector: Detector

    @property
    def action(self) -> Action:
        return self.rule.action


@dataclass(frozen=True)
class Compiled:
    """The rules of several policies (a tenant's and a key's), applied together."""

    input_rules: tuple[CompiledRule, ...]
    output_rules: tuple[CompiledRule, ...]
    fail_mode: FailMode


@dataclass
class Verdict:
    action: Action = Action.ALLOW
    findings: list[Finding] = field(default_factory=list)
    redacted_messages: list[Any] | None = None
    redacted_text: str | None = None
    restorations: dict[str, str] = field(default_factory=dict)


def finding(rule: CompiledRule, match: Match, *, offset: int = 0, message_index: int = -1,
            part_index: int = -1) -> Finding:
    what = f"{match.check} ({match.entity})" if match.entity else match.check
    action = Action.WARN if match.warn_only else rule.action
    return Finding(check=match.check, action=action, message=f"{what} matched",
                   start=offset + match.start, end=offset + match.end, entity=match.entity,
                   score=round(match.score, 4), policy_id=rule.policy_id,
                   message_index=message_index, part_index=part_index)


async def check_input(rules: Sequence[CompiledRule], messages: Sequence[Any]) -> Verdict:
    refs = msgs.texts(messages)
    found = await _matches(rules, [ref.text for ref in refs], [ref.third_party for ref in refs])
    verdict = Verdict()
    for rule, per_text in found:
        for ref, matches in zip(refs, per_text, strict=True):
            verdict.findings.extend(finding(rule, m, message_index=ref.message_index,
                                            part_index=ref.part_index) for m in matches)
    verdict.action = strongest(f.action for f in verdict.findings)
    if verdict.action is Action.REDACT:
        tokens = Tokens()
        changed = {}
        for text_index, ref in enumerate(refs):
            spans = _redactions(found, text_index)
            if spans:
                changed[(ref.message_index, ref.part_index)] = redact(ref.text, spans, tokens)
        verdict.redacted_messages = msgs.with_texts(messages, changed)
        verdict.restorations = tokens.restorations
    return verdict


async def check_output(rules: Sequence[CompiledRule], text: str,
                       restorations: Mapping[str, str]) -> Verdict:
    found = await _matches(rules, [text])
    verdict = Verdict(findings=[finding(rule, m) for rule, per_text in found for m in per_text[0]])
    verdict.action = strongest(f.action for f in verdict.findings)
    if verdict.action is Action.BLOCK:
        return verdict
    answer = redact(text, _redactions(found, 0)) if verdict.action is Action.REDACT else text
    answer = restore(answer, restorations)
    if answer != text:
        verdict.redacted_text = answer
    return verdict


async def _matches(rules: Sequence[CompiledRule], texts: list[str],
                   third_party: Sequence[bool] = ()) -> list[tuple[CompiledRule, list[list[Match]]]]:
    return [(rule, await rule.detector.find_all(texts, third_party)) for rule in rules]


def _redactions(found: list[tuple[CompiledRule, list[list[Match]]]], text_index: int) -> list[Redaction]:
    return [Redaction(m, rule.detector.reversible)
            for rule, per_text in found if rule.action is Action.REDACT
            for m in per_text[text_index] if not m.warn_only]
