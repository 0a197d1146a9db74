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


def prefer(targets: Sequence[Target], model: str, preferred: str) -> Sequence[Target]:
    """The deployments the header names first, in the strategy's order otherwise. A header naming
    neither the model nor one of its deployments is refused, not ignored."""
    if not preferred or preferred == model:
        return targets
    chosen = [t for t in targets if preferred in (t.deployment.name, t.upstream_model)]
    if not chosen:
        raise InvalidRequest(
            f"X-Preferred-Model '{preferred}' names neither the model '{model}' nor one of its "
            "deployments available now (their names or provider models).",
            param="X-Preferred-Model", code="invalid_value")
    return chosen + [t for t in targets if t not in chosen]
