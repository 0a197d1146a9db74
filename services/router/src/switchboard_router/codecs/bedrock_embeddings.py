"""OpenAI's /v1/embeddings on Bedrock's InvokeModel: Amazon Titan Text Embeddings and Cohere Embed.

`POST {base}/model/{modelId}/invoke` with the model's own JSON body; the answer becomes OpenAI's
`{"object": "list", "data": [...]}`, as floats or, when asked (the openai SDK asks by default), as
base64 of little-endian float32s. Titan embeds one text per call and counts its tokens; Cohere
embeds up to 96 and counts none (the gateway then counts what it sent).
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html
"""

from __future__ import annotations

from typing import Any

import orjson
from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.embedding_lists import input_texts, openai_list, refuse_unknown
from switchboard_router.domain import Tokens

TITAN_V2_DIMENSIONS = (256, 512, 1024)
COHERE_MAX_TEXTS = 96
FIELDS = frozenset({"model", "input", "encoding_format", "dimensions"})


def family(model: str) -> str:
    """Which body the model takes: "titan" or "cohere" (a cross-region profile's prefix aside)."""
    name = model.split(".", 1)[1] if model.split(".", 1)[0] in ("us", "eu", "apac") else model
    if name.startswith("amazon.titan-embed-text"):
        return "titan"
    if name.startswith("cohere.embed"):
        return "cohere"
    raise InvalidRequest(f"Bedrock embeddings are served for Amazon Titan Text Embeddings and Cohere "
                         f"Embed models, not {model!r}.", param="model", code="unsupported_value")


def request_body(model: str, body: dict[str, Any]) -> dict[str, Any]:
    refuse_unknown(body, FIELDS, "Bedrock")
    texts = input_texts(body.get("input"), "Bedrock")
    dimensions = body.get("dimensions")
    if family(model) == "titan":
        if len(texts) != 1:
            raise InvalidRequest("Titan embeds one text per request: send 'input' as one string.",
                                 param="input", code="unsupported_value")
        out: dict[str, Any] = {"inputText": texts[0]}
        if dimensions is not None:
            if "v2" not in model or dimensions not in TITAN_V2_DIMENSIONS:
                raise InvalidRequest("Titan Text Embeddings V2 takes dimensions 256, 512 or 1024 "
                                     "(V1 none).", param="dimensions", code="unsupported_value")
            out["dimensions"] = dimensions
        return out
    if dimensions is not None:
        raise InvalidRequest("Cohere Embed on Bedrock has a fixed size: leave 'dimensions' out.",
                             param="dimensions", code="unsupported_parameter")
    if len(texts) > COHERE_MAX_TEXTS:
        raise InvalidRequest(f"Cohere Embed takes at most {COHERE_MAX_TEXTS} texts per request.",
                             param="input", code="invalid_value")
    return {"texts": texts, "input_type": "search_document"}


def answer(model: str, body: dict[str, Any], data: bytes) -> tuple[dict[str, Any], Tokens | None]:
    """OpenAI's embeddings list and the provider's token count (None when it gives none)."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    vectors: Any = None
    count = None
    if isinstance(parsed, dict):
        if family(model) == "titan":
            vectors = [parsed.get("embedding")]
            count = parsed.get("inputTextTokenCount")
        else:
            vectors = parsed.get("embeddings")
            vectors = vectors.get("float") if isinstance(vectors, dict) else vectors
    usage = Tokens(count, 0) if isinstance(count, int) else None
    return openai_list(model, body, vectors, count if isinstance(count, int) else None), usage
