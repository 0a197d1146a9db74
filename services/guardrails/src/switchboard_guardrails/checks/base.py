"""What every check is: a name, the actions a rule may give it, its options (read strictly), and
the detector it compiles to once per policy version. Detectors are what scans run."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from switchboard_guardrails.domain import Action, Match


class Options(BaseModel):
    """A check's options: unknown keys and wrong types are refused, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Scope(enum.Enum):
    SPAN = "span"  # finds spans in any piece of text: scanned per chunk with a hold-back
    TEXT = "text"  # scores a whole text (classifiers): a stream is scored when it ends
    REQUEST = "request"  # looks at every text of a request at once (a remote call, a total)


class Detector(ABC):
    """One rule's check, compiled. Holds only what it was built with; safe to share between
    concurrent requests."""

    scope: ClassVar[Scope] = Scope.SPAN
    # A stream longer than this many characters is stopped (length checks only).
    char_limit: int | None = None
    # Redactions write numbered tokens ("[EMAIL_1]") whose originals the answer gets back.
    reversible: bool = False

    def __init__(self, check: str) -> None:
        self.check = check

    @abstractmethod
    def find(self, text: str) -> list[Match]:
        """Matches in `text`; SPAN and TEXT detectors."""

    def hold_from(self, text: str) -> int:
        """SPAN detectors: the earliest index from which a match could still be forming when
        more text follows (len(text) when none could)."""
        return len(text)

    def find_third_party(self, text: str) -> list[Match]:
        """Matches in a tool result or retrieved chunk; the same as find but for the injection
        checks, which score such text with the indirect model."""
        return self.find(text)

    async def find_all(self, texts: Sequence[str],
                       third_party: Sequence[bool] = ()) -> list[list[Match]]:
        """Matches in each text (`third_party[i]`: text i is a tool result or retrieved chunk);
        REQUEST detectors override this (one remote call for all)."""
        flags = third_party or [False] * len(texts)
        return [self.find_third_party(text) if flag else self.find(text)
                for text, flag in zip(texts, flags, strict=True)]


@dataclass(frozen=True)
class Toolkit:
    """What detectors are built from: loaded once at start (bootstrap), shared by every rule."""

    pii: Any  # checks.pii.engine.PiiEngine
    classifier: Any  # checks.classifier.Classifier: what users, systems and assistants write
    indirect: Any  # checks.classifier.Classifier for tool results and RAG chunks (INDIRECT_MODEL_PATH)
    moderation: Any  # checks.moderation.ModerationClient, or None when none is configured


class Check(ABC):
    name: ClassVar[str]
    actions: ClassVar[frozenset[Action]]
    options: ClassVar[type[Options]]

    def check_rule(self, options: Any, action: Action, toolkit: Toolkit) -> str | None:
        """Why this rule cannot be enforced here (a 400's message), or None when it can."""
        return None

    @abstractmethod
    def build(self, options: Any, action: Action, toolkit: Toolkit) -> Detector:
        """The detector for one rule; compiles patterns, so it runs once per policy version."""
