"""OpenAI's /v1/embeddings on Bedrock's InvokeModel: Amazon Titan Text Embeddings and Cohere Embed.

`POST {base}/model/{modelId}/invoke` with the model's own JSON body; the answer becomes OpenAI's
`{"object": "list", "data": [...]}`, as floats or, when asked (the openai SDK asks by default), as
base64 of little-endian float32s. Titan embeds one text per call and counts its tokens; Cohere
embeds up to 96 and counts none (the gateway then counts what it sent).
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
from switchboard_common.errors import InvalidRequest, UpstreamError

from switchboard_router.domain import Tokens

TITAN_V2_DIMENSIONS = (256, 512, 1024)
COHERE_MAX_TEXTS = 96
FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


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
    for name, value in body.items():
        if name not in FIELDS and value is not None:
            raise InvalidRequest(f"'{name}' is not supported by Bedrock's embeddings; leave it out.",
                                 param=name, code="unsupported_parameter")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequest("encoding_format must be float or base64.", param="encoding_format",
                             code="invalid_value")
    texts = _texts(body.get("input"))
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


def _texts(value: Any) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
        raise InvalidRequest("Bedrock embeds text: 'input' must be a string or an array of "
                             "non-empty strings (not token ids).", param="input", code="unsupported_value")
    return texts


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
    if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
        raise UpstreamError("The provider returned an answer that is not an embedding.",
                            code="invalid_upstream_response")
    as_base64 = body.get("encoding_format") == "base64"
    usage = Tokens(count, 0) if isinstance(count, int) else None
    out = {"object": "list", "model": model, "data": [
        {"object": "embedding", "index": i, "embedding": _base64(v) if as_base64 else v}
        for i, v in enumerate(vectors)],
        "usage": {"prompt_tokens": count or 0, "total_tokens": count or 0}}
    return out, usage


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
