"""What every non-OpenAI embeddings codec shares: OpenAI's request fields checked, its texts read,
and the provider's vectors returned as OpenAI's `{"object": "list", "data": [...]}` — as floats or,
when asked (the openai SDK asks by default), as base64 of little-endian float32s."""

from __future__ import annotations

import base64
import struct
from typing import Any

from switchboard_common.errors import InvalidRequest, UpstreamError

from switchboard_router.codecs.openai import EXTENSION_FIELDS


def refuse_unknown(body: dict[str, Any], fields: frozenset[str], provider: str) -> None:
    """A 400 naming the first field the provider's embeddings cannot take (or a bad encoding)."""
    for name, value in body.items():
        if name not in fields and name not in EXTENSION_FIELDS and value is not None:
            raise InvalidRequest(f"'{name}' is not supported by {provider}'s embeddings; leave it out.",
                                 param=name, code="unsupported_parameter")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequest("encoding_format must be float or base64.", param="encoding_format",
                             code="invalid_value")


def input_texts(value: Any, provider: str) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise InvalidRequest(f"{provider} embeds text: 'input' must be a string or an array of "
                             "non-empty strings (not token ids).", param="input", code="unsupported_value")
    return texts


def openai_list(model: str, body: dict[str, Any], vectors: Any, count: int | None) -> dict[str, Any]:
    """OpenAI's embeddings answer; `count` None leaves usage out for the gateway to fill in."""
    if not isinstance(vectors, list) or not vectors or not all(
            isinstance(v, list) and all(isinstance(x, (int, float)) for x in v) for v in vectors):
        raise UpstreamError("The provider returned an answer that is not an embedding.",
                            code="invalid_upstream_response")
    as_base64 = body.get("encoding_format") == "base64"
    out: dict[str, Any] = {"object": "list", "model": model, "data": [
        {"object": "embedding", "index": i, "embedding": _base64(v) if as_base64 else v}
        for i, v in enumerate(vectors)]}
    if count is not None:
        out["usage"] = {"prompt_tokens": count, "total_tokens": count}
    return out


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
