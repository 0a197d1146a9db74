"""OpenAI's /v1/embeddings on Google's APIs: pure functions, no I/O.

Gemini API: one text `POST .../models/{model}:embedContent` `{content, outputDimensionality}`
→ `{embedding: {values}}`; several `:batchEmbedContents` `{requests: [...]}` → `{embeddings:
[{values}]}` (https://ai.google.dev/api/embeddings). Gemini counts no tokens for embeddings, so
the gateway counts the input (usage left out here, filled in by providers/remote.py).

Vertex AI: `POST .../publishers/google/models/{model}:predict` `{instances: [{content}],
parameters: {outputDimensionality, autoTruncate: false}}` → `{predictions: [{embeddings: {values,
statistics: {token_count, truncated}}}]}`; usage is the sum of the token counts
(https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api).
autoTruncate is turned off: Vertex would otherwise cut a long input silently, where OpenAI refuses it.
"""

from __future__ import annotations

from typing import Any

from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.base import answer_object
from switchboard_router.codecs.embedding_lists import input_texts, openai_list, refuse_unknown
from switchboard_router.domain import Tokens

FIELDS = frozenset({"model", "input", "encoding_format", "dimensions"})
GEMINI_MAX_BATCH = 100  # BatchEmbedContentsRequest.requests
VERTEX_MAX_INSTANCES = 250  # text-embedding-005 and text-multilingual-embedding-002
# Vertex's gemini-embedding models take one instance per predict call.
VERTEX_SINGLE = ("gemini-embedding",)


def _dimensions(body: dict[str, Any]) -> int | None:
    value = body.get("dimensions")
    if value is not None and (not isinstance(value, int) or value < 1):
        raise InvalidRequest("dimensions must be a positive integer.", param="dimensions", code="invalid_value")
    return value


def gemini_request(model: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(method, body): embedContent for one string, batchEmbedContents for a list."""
    refuse_unknown(body, FIELDS, "Gemini")
    texts = input_texts(body.get("input"), "Gemini")
    dimensions = _dimensions(body)

    def one(text: str) -> dict[str, Any]:
        out: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            out["outputDimensionality"] = dimensions
        return out

    if isinstance(body.get("input"), str):
        return "embedContent", one(texts[0])
    if len(texts) > GEMINI_MAX_BATCH:
        raise InvalidRequest(f"Gemini embeds at most {GEMINI_MAX_BATCH} texts per request.",
                             param="input", code="invalid_value")
    # Each request of a batch names its model, which must be the batch's own.
    return "batchEmbedContents", {"requests": [{"model": f"models/{model}", **one(t)} for t in texts]}


def gemini_answer(model: str, body: dict[str, Any], data: bytes) -> tuple[dict[str, Any], Tokens | None]:
    parsed = _json(data)
    if "embedding" in parsed:
        vectors = [(parsed.get("embedding") or {}).get("values")]
    else:
        vectors = [(e or {}).get("values") if isinstance(e, dict) else None
                   for e in parsed.get("embeddings") or ()]
    return openai_list(model, body, vectors, None), None


def vertex_request(model: str, body: dict[str, Any]) -> dict[str, Any]:
    refuse_unknown(body, FIELDS, "Vertex AI")
    texts = input_texts(body.get("input"), "Vertex AI")
    limit = 1 if model.startswith(VERTEX_SINGLE) else VERTEX_MAX_INSTANCES
    if len(texts) > limit:
        raise InvalidRequest(f"Vertex AI's {model} embeds at most {limit} text(s) per request.",
                             param="input", code="invalid_value")
    parameters: dict[str, Any] = {"autoTruncate": False}
    dimensions = _dimensions(body)
    if dimensions is not None:
        parameters["outputDimensionality"] = dimensions
    return {"instances": [{"content": t} for t in texts], "parameters": parameters}


def vertex_answer(model: str, body: dict[str, Any], data: bytes) -> tuple[dict[str, Any], Tokens | None]:
    predictions = _json(data).get("predictions")
    vectors: list[Any] = []
    count = 0
    for p in predictions if isinstance(predictions, list) else ():
        embeddings = p.get("embeddings") if isinstance(p, dict) else None
        embeddings = embeddings if isinstance(embeddings, dict) else {}
        vectors.append(embeddings.get("values"))
        tokens = (embeddings.get("statistics") or {}).get("token_count")
        # Vertex writes the count as a number (sometimes a float such as 6.0)
        count += int(tokens) if isinstance(tokens, (int, float)) else 0
    return openai_list(model, body, vectors, count), Tokens(count, 0)


def _json(data: bytes) -> dict[str, Any]:
    return answer_object(data, "an answer that is not an embedding")
