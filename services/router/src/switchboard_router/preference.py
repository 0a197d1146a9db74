"""X-Preferred-Model: the model of a request whose body names none, and otherwise a deployment
of the requested model to try first (by its name or its provider's model name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from switchboard_common.errors import InvalidRequest

from switchboard_router.domain import Target

PREFERRED_MODEL_HEADER = "x-preferred-model"
_MAX_CHARS = 256


def fill_model(body: dict[str, Any], preferred: str) -> None:
    """The header's model for a body that names none (validation then checks it as usual)."""
    if not preferred:
        return
    if len(preferred) > _MAX_CHARS:
        raise InvalidRequest(f"The X-Preferred-Model header is longer than {_MAX_CHARS} characters.",
                             param="X-Preferred-Model", code="invalid_value")
    if body.get("model") in (None, ""):
        body["model"] = preferred


def check_preferred(deployments: Sequence[Target], model: str, preferred: str) -> None:
    """Refuse (not ignore) a header naming neither the model nor one of its deployments (any the
    file gives it, healthy or not): checked before anything else answers, a cache hit included."""
    if not preferred or preferred == model:
        return
    if not any(preferred in (t.deployment.name, t.upstream_model) for t in deployments):
        raise InvalidRequest(
            f"X-Preferred-Model '{preferred}' names neither the model '{model}' nor one of its "
            "deployments (their names or provider models).",
            param="X-Preferred-Model", code="invalid_value")


def prefer(targets: Sequence[Target], model: str, preferred: str) -> Sequence[Target]:
    """The deployments the header names first, in the strategy's order otherwise; on every pass
    (a retry's too). One that is unavailable now (its breaker open) is simply not among them."""
    if not preferred or preferred == model:
        return targets
    chosen = [t for t in targets if preferred in (t.deployment.name, t.upstream_model)]
    return chosen + [t for t in targets if t not in chosen] if chosen else targets
