"""The composition root: the one place that builds the guardrails object graph."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from switchboard_guardrails.servicer import GuardrailsServicer
from switchboard_guardrails.settings import GuardrailsSettings

_log = structlog.get_logger("bootstrap")


@dataclass(frozen=True)
class App:
    servicer: GuardrailsServicer
    on_shutdown: tuple[Callable[[], Awaitable[None]], ...] = ()


def build(settings: GuardrailsSettings) -> App:
    # Nothing to open yet: the policy store and the scanners are later issues. Say so once at
    # start, so an operator reading the logs is not surprised by the 501s.
    _log.warning("not built yet: every guardrails RPC answers 501 (see services/guardrails/README.md)")
    return App(servicer=GuardrailsServicer())
