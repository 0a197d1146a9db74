"""Guardrails' domain: policies, their rules, and what checks find; no gRPC, no SQL."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Who is asking, as auth's Authorize told us.
from switchboard_common.caller import Caller as Caller


class Action(enum.Enum):
    """What a rule does with a finding; a verdict is its strongest finding's action."""

    ALLOW = "allow"
    WARN = "warn"
    REDACT = "redact"
    BLOCK = "block"

    @property
    def strength(self) -> int:
        return _STRENGTH[self]


_STRENGTH = {Action.ALLOW: 0, Action.WARN: 1, Action.REDACT: 2, Action.BLOCK: 3}


def strongest(actions: Any) -> Action:
    return max(actions, key=lambda a: a.strength, default=Action.ALLOW)


class FailMode(enum.Enum):
    """What the router does with a policy's requests while guardrails cannot be reached."""

    DEFAULT = "default"  # closed when a rule blocks or redacts, open when every rule only warns
    CLOSED = "closed"
    OPEN = "open"


class Direction(enum.Enum):
    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True)
class Rule:
    check: str
    action: Action
    options: Mapping[str, Any] = field(default_factory=dict)  # JSON values, read by the check


@dataclass(frozen=True)
class Policy:
    policy_id: str
    tenant_id: str
    name: str
    input_rules: tuple[Rule, ...]
    output_rules: tuple[Rule, ...]
    fail_mode: FailMode
    created_at: datetime
    updated_at: datetime

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.input_rules if direction is Direction.INPUT else self.output_rules

    @property
    def resolved_fail_mode(self) -> FailMode:
        return resolve_fail_mode(self.fail_mode, (*self.input_rules, *self.output_rules))


def resolve_fail_mode(mode: FailMode, rules: tuple[Rule, ...]) -> FailMode:
    if mode is not FailMode.DEFAULT:
        return mode
    enforcing = any(r.action in (Action.BLOCK, Action.REDACT) for r in rules)
    return FailMode.CLOSED if enforcing else FailMode.OPEN


@dataclass(frozen=True)
class NewPolicy:
    name: str
    tenant_id: str  # empty: the caller's tenant
    input_rules: tuple[Rule, ...] = ()
    output_rules: tuple[Rule, ...] = ()
    fail_mode: FailMode = FailMode.DEFAULT


@dataclass(frozen=True)
class PolicyPatch:
    """The fields an update changes; None leaves a field as it is."""

    name: str | None = None
    input_rules: tuple[Rule, ...] | None = None
    output_rules: tuple[Rule, ...] | None = None
    fail_mode: FailMode | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """Something a check found in one text: where, what, how sure. Never the text itself."""

    check: str
    start: int
    end: int
    entity: str = ""
    score: float = 1.0
    # What a redaction writes instead of the match ("[EMAIL]"); empty: the check cannot redact.
    placeholder: str = ""
    warn_only: bool = False  # a weak signal (moderation keywords): reported, never enforced


@dataclass(frozen=True, slots=True)
class Finding:
    """A match under the rule that found it: what the router reports, never the matched text."""

    check: str
    action: Action
    message: str
    start: int
    end: int
    entity: str = ""
    score: float = 1.0
    policy_id: str = ""
    message_index: int = -1
    part_index: int = -1
