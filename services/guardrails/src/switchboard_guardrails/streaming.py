"""Scanning a streamed answer as it passes, across chunk boundaries, holding back only what a
match could still span.

Each piece is scanned together with the text held from before (and a little already released
text, for context and look-behinds). What may go out now ends where the earliest match that
could still be forming begins: a partial match of some pattern at the end ("4111 11", "john"),
a match that reaches the end (it may grow), a reversible token being written ("[EMA"). A card
number split across three chunks is therefore redacted, or the stream stopped, before any of its
digits leave. Whole-text checks (classifiers, moderation) judge the answer when it ends.

Pure and synchronous per piece (`feed`); `finish` awaits the whole-text checks. One instance per
stream; the guardrails service runs it behind CheckOutputStream, and any process holding compiled
rules can run it in-process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from switchboard_guardrails.checks.base import Scope
from switchboard_guardrails.domain import Action, Finding, Match, strongest
from switchboard_guardrails.redaction import Redaction, redact, restore
from switchboard_guardrails.scanning import CompiledRule, finding

# Already released text kept for scanning the next piece: context words ("card 4111...") and
# look-behinds need a few characters before a match.
CONTEXT_CHARS = 64
# A match still forming is held at most this long; a private key block is the longest entity.
MAX_HOLD_CHARS = 16_384
_TOKEN_START = re.compile(r"\[[A-Z][A-Z_]*\d*$")


@dataclass
class Release:
    text: str  # what may go to the client now, redacted and restored
    action: Action = Action.ALLOW  # BLOCK: stop the stream after `text`
    findings: list[Finding] = field(default_factory=list)
    held_chars: int = 0


class OutputStream:
    def __init__(self, rules: Sequence[CompiledRule], restorations: Mapping[str, str] | None = None,
                 *, max_hold_chars: int = MAX_HOLD_CHARS) -> None:
        self._span_rules = [r for r in rules if r.detector.scope is Scope.SPAN]
        self._whole_rules = [r for r in rules if r.detector.scope is not Scope.SPAN
                             and r.detector.char_limit is None]
        self._limits = [r for r in rules if r.detector.char_limit is not None]
        self._restorations = dict(restorations or {})
        self._max_hold = max_hold_chars
        self._context = ""  # raw, already released
        self._held = ""  # raw, not released yet
        self._offset = 0  # characters of the answer released (raw)
        self._whole: list[str] = []  # the raw answer, kept only for whole-text rules
        self.blocked = False

    @property
    def held_chars(self) -> int:
        return len(self._held)

    def feed(self, piece: str) -> Release:
        """What of the answer so far may go out now."""
        if self.blocked:
            return Release("", Action.BLOCK)
        if self._whole_rules:
            self._whole.append(piece)
        return self._step(piece, final=False)

    async def finish(self) -> Release:
        """The rest, once the answer has ended; then the whole-text rules."""
        if self.blocked:
            return Release("", Action.BLOCK)
        release = self._step("", final=True)
        if self.blocked or not self._whole_rules:
            return release
        answer = "".join(self._whole)
        for rule in self._whole_rules:
            for match in (await rule.detector.find_all([answer]))[0]:
                release.findings.append(finding(rule, match))
        release.action = strongest([release.action, *(f.action for f in release.findings)])
        if release.action is Action.BLOCK:
            self.blocked = True
            release.text = ""  # the answer as a whole is refused: nothing more of it goes out
        return release

    def _step(self, piece: str, final: bool) -> Release:
        text = self._context + self._held + piece
        margin = len(self._context)
        found = [(rule, m) for rule in self._span_rules for m in rule.detector.find(text)
                 if m.end > margin]
        hold = len(text) if final else self._hold_point(text, margin, found)
        ready = [(rule, _clipped(m, margin)) for rule, m in found if m.end <= hold]
        hold, blocking = self._limit(text, margin, hold, ready)
        findings = [finding(rule, m, offset=self._offset - margin) for rule, m in ready]
        if blocking is not None:
            findings.append(blocking)
        block_at = min((f.start - self._offset + margin for f in findings if f.action is Action.BLOCK),
                       default=None)
        if block_at is not None:
            hold = max(margin, block_at)
            ready = [(rule, m) for rule, m in ready if m.end <= hold]
        spans = [Redaction(_shifted(m, -margin), rule.detector.reversible)
                 for rule, m in ready if rule.action is Action.REDACT]
        out = restore(redact(text[margin:hold], spans), self._restorations)
        self._context = text[:hold][-CONTEXT_CHARS:]
        self._held = "" if block_at is not None else text[hold:]
        self._offset += hold - margin
        action = strongest(f.action for f in findings)
        if action is Action.ALLOW and out != text[margin:hold]:
            action = Action.REDACT  # restorations only: the text differs all the same
        if action is Action.BLOCK:
            self.blocked = True
        return Release(out, action, findings, len(self._held))

    def _hold_point(self, text: str, margin: int, found: list[tuple[CompiledRule, Match]]) -> int:
        hold = len(text)
        for rule in self._span_rules:
            hold = min(hold, rule.detector.hold_from(text))
        for _, match in found:
            if match.end >= len(text):  # reaches the end: it may still grow
                hold = min(hold, match.start)
        if self._restorations:
            token = _TOKEN_START.search(text, max(0, len(text) - 40))
            if token:
                hold = min(hold, token.start())
        hold = max(hold, margin, len(text) - self._max_hold)
        moved = True
        while moved:  # never cut inside a match
            moved = False
            for _, match in found:
                if match.start < hold < match.end and max(margin, match.start) < hold:
                    hold, moved = max(margin, match.start), True
        return hold

    def _limit(self, text: str, margin: int, hold: int,
               ready: list[tuple[CompiledRule, Match]]) -> tuple[int, Finding | None]:
        """A length rule stops the stream where the answer passes its limit."""
        for rule in self._limits:
            limit = rule.detector.char_limit or 0
            if self._offset + (hold - margin) > limit:
                self._limits.remove(rule)  # said once; a warn rule lets the stream go on
                at = margin + max(0, limit - self._offset)
                over = Match(rule.detector.check, at, len(text), entity="max_chars")
                return hold, finding(rule, over, offset=self._offset - margin)
        return hold, None


def _clipped(match: Match, margin: int) -> Match:
    if match.start >= margin:
        return match
    return Match(match.check, margin, match.end, match.entity, match.score, match.placeholder)


def _shifted(match: Match, by: int) -> Match:
    return Match(match.check, match.start + by, match.end + by, match.entity, match.score,
                 match.placeholder)
