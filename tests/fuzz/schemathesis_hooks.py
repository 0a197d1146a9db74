"""Schemathesis hooks for `make fuzz`: point part of the generated requests at models this gateway
serves, so that OpenAI's schemas are checked against real answers, not only 404s."""

from __future__ import annotations

import random

import schemathesis

_MODELS = {
    "createChatCompletion": ["switchboard-local", "gpt-4o-mini"],
    "createCompletion": ["switchboard-local", "gpt-3.5-turbo-instruct"],
    "createEmbedding": ["switchboard-local-embed", "text-embedding-3-small"],
    "retrieveModel": ["switchboard-local", "switchboard-local-embed", "gpt-4o-mini"],
}
_rng = random.Random(11)


def _served(context) -> list[str]:
    operation = context.operation
    return _MODELS.get(operation.definition.raw.get("operationId", "") if operation else "", [])


@schemathesis.hook
def map_body(context, body):
    models = _served(context)
    if not isinstance(body, dict):
        return body
    if models and "model" in body and _rng.random() < 0.7:
        body["model"] = _rng.choice(models)
    return body


@schemathesis.hook
def before_call(context, case, kwargs):
    """Every case, whichever phase made it (examples and coverage cases skip map_body)."""
    if isinstance(case.body, dict) and case.body.get("encoding_format") == "base64":
        # OpenAI's schema types every embedding as an array of floats, yet asked for base64 it
        # (like every OpenAI-compatible server, and the gateway) sends a string.
        case.body["encoding_format"] = "float"


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    models = _served(context)
    if models and path_parameters and "model" in path_parameters and _rng.random() < 0.7:
        path_parameters["model"] = _rng.choice(models)
    return path_parameters
