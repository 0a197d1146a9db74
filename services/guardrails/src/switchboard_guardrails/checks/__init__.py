"""The guardrail checks, by name: the one place that lists them. A rule names a check, an
action and options; `validate` reads a rule strictly, `build` compiles it into a detector."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from switchboard_common.errors import InvalidRequest

from switchboard_guardrails.checks.base import Check, Detector, Options, Toolkit
from switchboard_guardrails.checks.custom import DeniedTopicsCheck, KeywordsCheck, LengthCheck, RegexCheck
from switchboard_guardrails.checks.injection import JailbreakCheck, PromptInjectionCheck
from switchboard_guardrails.checks.moderation import ModerationCheck
from switchboard_guardrails.checks.pii.check import PiiCheck
from switchboard_guardrails.domain import Rule

REGISTRY: dict[str, Check] = {check.name: check for check in (
    PiiCheck(), PromptInjectionCheck(), JailbreakCheck(), ModerationCheck(), RegexCheck(),
    KeywordsCheck(), DeniedTopicsCheck(), LengthCheck(),
)}


def validate(rule: Rule, where: str, toolkit: Toolkit) -> Options:
    """The rule's options read strictly; a 400 naming `where` (e.g. "input_rules[0]") and the
    field when the rule is not one this service can enforce."""
    check = REGISTRY.get(rule.check)
    if check is None:
        raise InvalidRequest(f"Unknown check '{rule.check}' in '{where}.check'. Checks: "
                             f"{', '.join(sorted(REGISTRY))}.", param=f"{where}.check",
                             code="invalid_value")
    if rule.action not in check.actions:
        allowed = ", ".join(sorted(a.value for a in check.actions))
        raise InvalidRequest(f"The {check.name} check cannot {rule.action.value}; it takes: "
                             f"{allowed}.", param=f"{where}.action", code="invalid_value")
    options = _options(check, rule.options, f"{where}.options")
    problem = check.check_rule(options, rule.action, toolkit)
    if problem:
        raise InvalidRequest(f"Invalid '{where}': {problem}.", param=f"{where}.options",
                             code="invalid_value")
    return options


def build(rule: Rule, toolkit: Toolkit) -> Detector:
    """The rule compiled; its options were validated when the policy was stored."""
    check = REGISTRY[rule.check]
    return check.build(_options(check, rule.options, "options"), rule.action, toolkit)


def _options(check: Check, raw: Any, where: str) -> Options:
    try:
        return check.options.model_validate(dict(raw or {}))
    except ValidationError as exc:
        error = exc.errors()[0]
        path = where + "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                               for part in error["loc"])
        raise InvalidRequest(f"Invalid '{path}': {error['msg']}.", param=path,
                             code="invalid_value") from None
