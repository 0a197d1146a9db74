"""The `pii` check: personal data and secrets, found by the PII engine, per-entity thresholds
and an allow-list per rule."""

from __future__ import annotations

from typing import Annotated, Literal, cast

from pydantic import Field, StringConstraints, field_validator

from switchboard_guardrails.checks.base import Check, Detector, Options, Toolkit
from switchboard_guardrails.checks.pii.engine import ENTITIES, PiiEngine
from switchboard_guardrails.domain import Action, Match

EntityName = Literal["email", "phone", "credit_card", "ssn", "iban", "ip_address", "api_key",
                     "private_key"]


class PiiOptions(Options):
    entities: list[EntityName] = Field(default_factory=lambda: cast(list[EntityName], list(ENTITIES)),
                                       min_length=1)
    # entity -> the score (0..1) a match needs; 0.5 for those not named
    thresholds: dict[EntityName, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict)
    # exact values never reported, e.g. the support desk's own address
    allow_list: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=1000)
    # "placeholder": [EMAIL]; "token": [EMAIL_1], restored in the answer (CheckInput's
    # restorations) where the operator opts in
    redaction: Literal["placeholder", "token"] = "placeholder"

    @field_validator("entities")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class PiiDetector(Detector):
    def __init__(self, engine: PiiEngine, options: PiiOptions) -> None:
        super().__init__("pii")
        self._engine = engine
        self._entities = tuple(options.entities)
        self._thresholds: dict[str, float] = {str(k): v for k, v in options.thresholds.items()}
        self._allow = tuple(options.allow_list)
        self.reversible = options.redaction == "token"

    def find(self, text: str) -> list[Match]:
        return self._engine.analyze(text, self._entities, self._thresholds, self._allow)

    def hold_from(self, text: str) -> int:
        return self._engine.hold_from(text)


class PiiCheck(Check):
    name = "pii"
    actions = frozenset({Action.BLOCK, Action.REDACT, Action.WARN})
    options = PiiOptions

    def check_rule(self, options: PiiOptions, action: Action, toolkit: Toolkit) -> str | None:
        if options.redaction == "token" and action is not Action.REDACT:
            return "'redaction' applies to rules whose action is redact"
        return None

    def build(self, options: PiiOptions, action: Action, toolkit: Toolkit) -> Detector:
        return PiiDetector(toolkit.pii, options)
