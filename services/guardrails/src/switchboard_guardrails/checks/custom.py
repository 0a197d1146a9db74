"""The operator's own checks: regular expressions, keyword lists, denied topics (keyword sets
by topic) and a length limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import regex
import structlog
from pydantic import Field, StringConstraints

from switchboard_guardrails.checks.base import Check, Detector, Options, Scope, Toolkit
from switchboard_guardrails.checks.patterns import Patterns, PatternTimeout, compile_all, keyword_source
from switchboard_guardrails.domain import Action, Match

_log = structlog.get_logger("checks")

# Long enough for any keyword or a reasonable operator pattern; bounds what a stream holds back.
_LOOKBACK = 256
Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
_ALL_ACTIONS = frozenset({Action.BLOCK, Action.REDACT, Action.WARN})
_NO_REDACT = frozenset({Action.BLOCK, Action.WARN})


class SpanDetector(Detector):
    """Matches of compiled patterns, each labelled with an entity (and a placeholder)."""

    def __init__(self, check: str, patterns: Patterns, entities: Sequence[str]) -> None:
        super().__init__(check)
        self._patterns = patterns
        self._entities = tuple(entities)

    def find(self, text: str) -> list[Match]:
        try:
            return [Match(self.check, m.start(), m.end(), entity=self._entities[index],
                          placeholder=f"[{self._entities[index].upper()}]")
                    for index, m in self._patterns.finditer(text)]
        except PatternTimeout:
            # Fail closed: a text the rule could not read counts as matching it.
            _log.warning("a pattern timed out; counting the text as a match", check=self.check)
            return [Match(self.check, 0, len(text), entity="timeout", placeholder="[REDACTED]")]

    def hold_from(self, text: str) -> int:
        return self._patterns.hold_from(text, _LOOKBACK)


# --- regex --------------------------------------------------------------------------------------

class RegexOptions(Options):
    patterns: list[Annotated[str, StringConstraints(min_length=1, max_length=1000)]] = Field(
        min_length=1, max_length=50)
    ignore_case: bool = False
    label: Label = "custom"  # names the finding and the placeholder, e.g. [CUSTOM]


class RegexCheck(Check):
    name = "regex"
    actions = _ALL_ACTIONS
    options = RegexOptions

    def check_rule(self, options: RegexOptions, action: Action, toolkit: Toolkit) -> str | None:
        for index, source in enumerate(options.patterns):
            try:
                pattern = regex.compile(source)
            except regex.error as exc:
                return f"patterns[{index}] is not a valid regular expression: {exc}"
            if pattern.search(""):
                return f"patterns[{index}] matches the empty string"
        return None

    def build(self, options: RegexOptions, action: Action, toolkit: Toolkit) -> Detector:
        return SpanDetector(self.name, compile_all(options.patterns, ignore_case=options.ignore_case),
                            [options.label] * len(options.patterns))


# --- keywords and denied topics -----------------------------------------------------------------

class KeywordOptions(Options):
    keywords: list[Word] = Field(min_length=1, max_length=5000)
    case_sensitive: bool = False
    label: Label = "keyword"


class KeywordsCheck(Check):
    name = "keywords"
    actions = _ALL_ACTIONS
    options = KeywordOptions

    def build(self, options: KeywordOptions, action: Action, toolkit: Toolkit) -> Detector:
        patterns = compile_all([keyword_source(options.keywords)],
                               ignore_case=not options.case_sensitive)
        return SpanDetector(self.name, patterns, [options.label])


class TopicOptions(Options):
    # topic name -> the words and phrases that mean it, e.g. {"medical": ["diagnosis", ...]}
    topics: dict[Label, list[Word]] = Field(min_length=1, max_length=100)


class DeniedTopicsCheck(Check):
    name = "denied_topics"
    actions = _NO_REDACT
    options = TopicOptions

    def check_rule(self, options: TopicOptions, action: Action, toolkit: Toolkit) -> str | None:
        empty = [topic for topic, words in options.topics.items() if not words]
        return f"topic '{empty[0]}' has no keywords" if empty else None

    def build(self, options: TopicOptions, action: Action, toolkit: Toolkit) -> Detector:
        topics = sorted(options.topics)
        patterns = compile_all([keyword_source(options.topics[t]) for t in topics], ignore_case=True)
        return SpanDetector(self.name, patterns, topics)


# --- length -------------------------------------------------------------------------------------

class LengthOptions(Options):
    max_chars: int = Field(gt=0, le=100_000_000)


class LengthDetector(Detector):
    """All texts of a request (or a whole answer) together longer than the limit."""

    scope = Scope.REQUEST

    def __init__(self, check: str, max_chars: int) -> None:
        super().__init__(check)
        self.char_limit = max_chars

    def find(self, text: str) -> list[Match]:
        return self._over(text, 0)

    async def find_all(self, texts: Sequence[str],
                       third_party: Sequence[bool] = ()) -> list[list[Match]]:
        # Who wrote a text does not change this check (only the injection checks tell).
        found: list[list[Match]] = []
        seen = 0
        for text in texts:
            found.append(self._over(text, seen))
            seen += len(text)
        return found

    def _over(self, text: str, seen: int) -> list[Match]:
        limit = self.char_limit or 0
        if seen + len(text) <= limit:
            return []
        start = max(0, limit - seen)
        return [Match(self.check, start, len(text), entity="max_chars")]


class LengthCheck(Check):
    name = "length"
    actions = _NO_REDACT
    options = LengthOptions

    def build(self, options: LengthOptions, action: Action, toolkit: Toolkit) -> Detector:
        return LengthDetector(self.name, options.max_chars)
