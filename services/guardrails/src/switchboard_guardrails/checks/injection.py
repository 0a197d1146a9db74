"""The `prompt_injection` and `jailbreak` checks: the trained classifier's score (threshold per
rule; the model's own by default) and a few precise patterns each, which find the textbook forms
with next to no false positives. Both share one classifier: the training sets do not tell
injections from jailbreaks, so the score says "an attack" and the patterns say which kind.
Tool results and retrieved chunks are scored by a second model, trained without chit-chat
(checks/classifier.INDIRECT_MODEL_PATH): the chat model reads conversational text as benign,
and injections in tool outputs are conversational."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from switchboard_guardrails.checks.base import Check, Detector, Options, Scope, Toolkit
from switchboard_guardrails.checks.classifier import Classifier
from switchboard_guardrails.domain import Action, Match

_GAP = r"[^.\n]{0,40}?"
INJECTION_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    rf"\b(?:ignore|disregard|forget|override|bypass|skip)\b{_GAP}\b(?:all|any|the|your|previous|prior|above|"
    rf"earlier|preceding|system|initial)\b{_GAP}\b(?:instructions?|prompts?|rules|directions|guidelines)\b",
    rf"\b(?:reveal|show|print|repeat|output|leak|display|dump|disclose)\b{_GAP}\b(?:system prompt|"
    r"(?:initial|hidden|original|secret) (?:prompt|instructions)|instructions above)",
    r"<\|im_start\|>\s*system|\[/?INST\]|<<SYS>>|<\s*/?\s*system\s*>",
    r"(?m)^\s*#{2,}\s*(?:system|new instructions?)\s*:",
    r"\b(?:new|updated|real|actual) (?:system )?instructions\s*:",
))
JAILBREAK_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\bdo anything now\b",
    r"\b(?:DAN|developer|god|jailbreak|unrestricted|evil) mode\b",
    rf"\b(?:act|pretend|behave|roleplay|role-play|respond)\b{_GAP}\b(?:as|to be|like)\b{_GAP}\b(?:unfiltered|"
    r"uncensored|unrestricted|without (?:any )?(?:restrictions|filters|limits|rules|guidelines))",
    r"\b(?:no|without|free (?:of|from)|beyond) (?:any )?(?:ethical|moral|content) (?:guidelines|"
    r"restrictions|limits|filters|constraints|boundaries)\b",
    r"\byou are (?:now )?(?:free|freed|liberated|unchained|unshackled|jailbroken)\b",
    rf"\b(?:ignore|disregard|bypass|violate)\b{_GAP}\b(?:openai|anthropic|content|safety|usage) "
    r"(?:policy|policies|guidelines|filters?)\b",
))


class ClassifierOptions(Options):
    # The score (0..1) that counts as an attack, for both models; default: each model's own (the
    # chat model's: at most 0.5 % false positives on each held-out validation share of ordinary
    # chat and prose; the indirect model's: 1 % on them pooled).
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    patterns: bool = True  # the precise patterns as well as the classifier


class AttackDetector(Detector):
    scope = Scope.TEXT  # a stream is judged when it ends

    def __init__(self, check: str, classifier: Classifier, options: ClassifierOptions,
                 patterns: tuple[re.Pattern[str], ...], indirect: Classifier) -> None:
        super().__init__(check)
        self._chat = (classifier, options.threshold or classifier.threshold)
        self._indirect = (indirect, options.threshold or indirect.threshold)
        self._patterns = patterns if options.patterns else ()

    def find(self, text: str) -> list[Match]:
        return self._find(text, *self._chat)

    def find_third_party(self, text: str) -> list[Match]:
        return self._find(text, *self._indirect)

    def _find(self, text: str, classifier: Classifier, threshold: float) -> list[Match]:
        for pattern in self._patterns:
            found = pattern.search(text)
            if found:
                return [Match(self.check, found.start(), found.end(), entity="pattern", score=1.0)]
        score = classifier.score(text) if text.strip() else 0.0
        if score >= threshold:
            return [Match(self.check, 0, len(text), entity="classifier", score=score)]
        return []


class _AttackCheck(Check):
    actions = frozenset({Action.BLOCK, Action.WARN})
    options = ClassifierOptions
    patterns: tuple[re.Pattern[str], ...] = ()

    def build(self, options: ClassifierOptions, action: Action, toolkit: Toolkit) -> Detector:
        return AttackDetector(self.name, toolkit.classifier, options, self.patterns, toolkit.indirect)


class PromptInjectionCheck(_AttackCheck):
    name = "prompt_injection"
    patterns = INJECTION_PATTERNS


class JailbreakCheck(_AttackCheck):
    name = "jailbreak"
    patterns = JAILBREAK_PATTERNS
