"""The PII engine: presidio's analyzer with its no-op NLP engine (no model to download) and the
pattern recognizers we keep, ours beside presidio's, built once per process.

Presidio's context enhancement needs lemmas, which the no-op engine has none of, so context words
(a "phone" or "ssn" shortly before a match) are weighed here instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import regex
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NoOpNlpEngine

from switchboard_guardrails.checks.patterns import Patterns
from switchboard_guardrails.checks.pii import recognizers
from switchboard_guardrails.domain import Match


@dataclass(frozen=True)
class Entity:
    name: str  # ours, in rules and findings: "email"
    presidio: str  # presidio's: "EMAIL_ADDRESS"
    placeholder: str
    context: tuple[str, ...] = ()


ENTITIES = {e.name: e for e in (
    Entity("email", "EMAIL_ADDRESS", "[EMAIL]", ("email", "e-mail", "mail")),
    Entity("phone", "PHONE_NUMBER", "[PHONE]",
           ("phone", "call", "tel", "telephone", "mobile", "cell", "fax", "whatsapp")),
    Entity("credit_card", "CREDIT_CARD", "[CREDIT_CARD]",
           ("card", "credit", "debit", "visa", "mastercard", "amex", "maestro")),
    Entity("ssn", "US_SSN", "[SSN]", ("ssn", "social security", "social-security")),
    Entity("iban", "IBAN_CODE", "[IBAN]", ("iban", "bank", "account")),
    Entity("ip_address", "IP_ADDRESS", "[IP_ADDRESS]", ("ip", "ipv4", "ipv6", "address", "server")),
    Entity("api_key", "API_KEY", "[API_KEY]", ("key", "token", "secret")),
    Entity("private_key", "PRIVATE_KEY", "[PRIVATE_KEY]"),
)}
BY_PRESIDIO = {e.presidio: e for e in ENTITIES.values()}
DEFAULT_THRESHOLD = 0.5
CONTEXT_BOOST = 0.35  # what presidio's context enhancer adds
_CONTEXT_CHARS = 40  # how far before a match a context word counts
# How far back a stream looks for a match still forming: every entity fits in 64 characters but
# a private key block, which is looked for (and held, from its BEGIN line) across 16 KB.
LOOKBACK = 64
PRIVATE_KEY_LOOKBACK = 16_384


class PiiEngine:
    """Shared by every pii rule; thread-safe for reads, which is all a request does."""

    def __init__(self, phone_regions: tuple[str, ...] = ("US",)) -> None:
        recognizers.quiet_presidio()
        nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
        nlp.load()
        registry = RecognizerRegistry(supported_languages=["en"])
        for recognizer in (recognizers.FastSsnRecognizer(), recognizers.FastIbanRecognizer(),
                           recognizers.FastIpRecognizer(),
                           recognizers.CardRecognizer(), recognizers.OfflineEmailRecognizer(),
                           recognizers.PhoneRecognizer(phone_regions), *recognizers.secret_recognizers()):
            registry.add_recognizer(recognizer)
        self._analyzer = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"],
                                        context_aware_enhancer=recognizers.NoContextEnhancer())
        self._nlp_artifacts = nlp.process_text("", "en")  # empty artifacts: the no-op engine's
        self._context = {e.presidio: _context_pattern(e.context) for e in ENTITIES.values() if e.context}
        self._partials = _partial_patterns(registry)

    def analyze(self, text: str, entities: Iterable[str], thresholds: Mapping[str, float],
                allow_list: Iterable[str] = ()) -> list[Match]:
        """Entities (our names) found at or above their threshold, overlaps resolved in favour of
        the higher score, then the longer match."""
        wanted = [ENTITIES[name].presidio for name in entities]
        results = self._analyzer.analyze(text=text, language="en", entities=wanted,
                                         score_threshold=0.0, allow_list=list(allow_list) or None,
                                         nlp_artifacts=self._nlp_artifacts)
        found = []
        for result in results:
            entity = BY_PRESIDIO[result.entity_type]
            score = self._with_context(text, result.start, result.entity_type, result.score)
            if score >= thresholds.get(entity.name, DEFAULT_THRESHOLD):
                found.append(Match("pii", result.start, result.end, entity=entity.name, score=score,
                                   placeholder=entity.placeholder))
        return _without_overlaps(found)

    def hold_from(self, text: str) -> int:
        return self._partials.hold_from(text, LOOKBACK)

    def _with_context(self, text: str, start: int, presidio: str, score: float) -> float:
        pattern = self._context.get(presidio)
        if pattern is None or score >= 1.0:
            return score
        if pattern.search(text, max(0, start - _CONTEXT_CHARS), start):
            return min(1.0, score + CONTEXT_BOOST)
        return score


def _context_pattern(words: tuple[str, ...]) -> regex.Pattern:
    return regex.compile(r"\b(?:" + "|".join(regex.escape(w) for w in words) + r")", regex.IGNORECASE)


def _partial_patterns(registry: RecognizerRegistry) -> Patterns:
    """Every pattern of the registry's recognizers, for finding partial matches at a text's end
    (the phone recognizer's candidate pattern stands for its own)."""
    compiled = [recognizers.PhoneRecognizer.CANDIDATE]
    lookbacks = {}
    for recognizer in registry.recognizers:
        flags = getattr(recognizer, "global_regex_flags", None)
        for pattern in getattr(recognizer, "patterns", ()):
            if "PRIVATE_KEY" in recognizer.supported_entities:
                lookbacks[len(compiled)] = PRIVATE_KEY_LOOKBACK
            compiled.append(regex.compile(pattern.regex, flags or 0))
    return Patterns(compiled, lookbacks)


def _without_overlaps(matches: list[Match]) -> list[Match]:
    kept: list[Match] = []
    for match in sorted(matches, key=lambda m: (-m.score, -(m.end - m.start), m.start)):
        if all(match.end <= k.start or match.start >= k.end for k in kept):
            kept.append(match)
    return sorted(kept, key=lambda m: m.start)
