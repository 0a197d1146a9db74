"""The fake's embeddings, in Google's shapes: the Gemini API's embedContent and batchEmbedContents
(bodies parsed into the official protos of the API version, unknown fields refused) and Vertex
AI's predict on its text-embedding models (validated against the instance and parameter schema
of Vertex's reference, as no Vertex proto is published on PyPI short of the whole aiplatform SDK).

Vectors are deterministic per text (so a test can compare them); the size is the model's default
or outputDimensionality. Vertex counts tokens as words in `statistics.token_count`; the Gemini
API counts none, as Google's does not.
https://ai.google.dev/api/embeddings
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from google.ai import generativelanguage_v1, generativelanguage_v1beta

from tests.fakes.gemini_rules import Refusal, _field, parse_proto

GEMINI_METHODS = {"embedContent": "EmbedContentRequest", "batchEmbedContents": "BatchEmbedContentsRequest"}
PROTOS = {"v1beta": generativelanguage_v1beta, "v1": generativelanguage_v1}
# Each model's full size (what outputDimensionality may shrink).
SIZES = {"gemini-embedding-001": 3072, "text-embedding-004": 768, "text-embedding-005": 768,
         "text-multilingual-embedding-002": 768}
GEMINI_MAX_BATCH = 100
VERTEX_MAX_INSTANCES = 250
VERTEX_INSTANCE = frozenset({"content", "task_type", "title"})
VERTEX_PARAMETERS = frozenset({"autoTruncate", "outputDimensionality"})
VERTEX_MAX_TOKENS = 2048  # per input; longer is refused when autoTruncate is false
TASK_TYPES = frozenset({"RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION",
                        "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY"})


def vector(text: str, size: int) -> list[float]:
    """A deterministic vector for `text`, exactly representable as float32 (base64 round trips)."""
    out: list[float] = []
    counter = 0
    while len(out) < size:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out += [struct.unpack("<f", struct.pack("<f", (b - 128) / 128))[0] for b in digest]
        counter += 1
    return out[:size]


def _size(model: str, dimensions: Any) -> int:
    full = SIZES.get(model)
    if full is None:
        raise Refusal(404, f"models/{model} is not found for API version, or is not supported for embedding.")
    if dimensions is None:
        return full
    if not isinstance(dimensions, int) or not 1 <= dimensions <= full:
        raise Refusal(400, f"* output_dimensionality: must be between 1 and {full} for {model}.")
    return dimensions


def _text(content: Any, at: str) -> str:
    parts = (content or {}).get("parts") or []
    texts = [p.get("text") for p in parts if isinstance(p, dict)]
    if not parts or len(texts) != len(parts) or not all(isinstance(t, str) and t for t in texts):
        raise Refusal(400, f"* {at}.content.parts: must be non-empty text parts.")
    return "".join(str(t) for t in texts)


def gemini_answer(model: str, method: str, version: str, body: Any) -> dict[str, Any]:
    parse_proto(body, getattr(PROTOS[version], GEMINI_METHODS[method]))
    if method == "embedContent":
        size = _size(model, _field(body, "outputDimensionality"))
        return {"embedding": {"values": vector(_text(body.get("content"), "EmbedContentRequest"), size)}}
    requests = body.get("requests") or []
    if not requests or len(requests) > GEMINI_MAX_BATCH:
        raise Refusal(400, f"* BatchEmbedContentsRequest.requests: between 1 and {GEMINI_MAX_BATCH} requests.")
    out = []
    for i, request in enumerate(requests):
        if request.get("model") != f"models/{model}":
            raise Refusal(400, f"* BatchEmbedContentsRequest.requests[{i}].model: the model of each request "
                               f"must be the batch's (models/{model}).")
        size = _size(model, _field(request, "outputDimensionality"))
        out.append({"values": vector(_text(request.get("content"), f"requests[{i}]"), size)})
    return {"embeddings": out}


def vertex_answer(model: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) - {"instances", "parameters"}:
        raise Refusal(400, "Invalid JSON payload received. Unknown name in the predict request.")
    instances = body.get("instances")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict) or set(parameters) - VERTEX_PARAMETERS:
        raise Refusal(400, f"Unknown parameters {sorted(set(parameters) - VERTEX_PARAMETERS)}.")
    limit = 1 if model.startswith("gemini-embedding") else VERTEX_MAX_INSTANCES
    if not isinstance(instances, list) or not 1 <= len(instances) <= limit:
        raise Refusal(400, f"{model} takes between 1 and {limit} instances per request.")
    size = _size(model, parameters.get("outputDimensionality"))
    predictions, characters = [], 0
    for i, instance in enumerate(instances):
        content = instance.get("content") if isinstance(instance, dict) else None
        if not isinstance(content, str) or not content or set(instance) - VERTEX_INSTANCE:
            raise Refusal(400, f"instances[{i}]: an instance is {{content, task_type?, title?}} with text content.")
        if instance.get("task_type") not in (None, *TASK_TYPES):
            raise Refusal(400, f"instances[{i}].task_type: unknown task type.")
        words = len(content.split())
        if words > VERTEX_MAX_TOKENS and parameters.get("autoTruncate") is False:
            raise Refusal(400, f"instances[{i}]: the input has {words} tokens, more than the {VERTEX_MAX_TOKENS} "
                               "allowed; enable autoTruncate or shorten it.")
        characters += len(content.replace(" ", ""))
        predictions.append({"embeddings": {"statistics": {"truncated": False, "token_count": words},
                                           "values": vector(content, size)}})
    return {"predictions": predictions, "metadata": {"billableCharacterCount": characters}}
