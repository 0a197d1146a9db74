"""The gateway's own OpenAI API, as memory calls it: /v1/embeddings for collections embedded by a
served model, /v1/chat/completions for summaries. One pooled aiohttp session, a deadline on every
call; the key is the one configured for memory (its usage is billed to that key)."""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np
import orjson

from switchboard_common.errors import ApiError, InvalidRequest, ServiceUnavailable, UpstreamError


class GatewayClient:
    def __init__(self, base_url: str, key: str, timeout_seconds: float) -> None:
        self._base = base_url.rstrip("/")
        self._key = key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def embeddings(self, model: str, inputs: list[str]) -> np.ndarray:
        body = await self._post("/embeddings", {"model": model, "input": inputs})
        data = sorted(body.get("data") or [], key=lambda d: d.get("index", 0))
        if len(data) != len(inputs):
            raise UpstreamError(f"the gateway's /v1/embeddings answered {len(data)} vectors for "
                                f"{len(inputs)} inputs")
        return np.asarray([d["embedding"] for d in data], dtype=np.float32)

    async def chat(self, model: str, messages: list[dict[str, Any]], max_tokens: int) -> str:
        body = await self._post("/chat/completions", {
            "model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0})
        try:
            return body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise UpstreamError("the gateway's /v1/chat/completions answered without a message") \
                from None

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"authorization": f"Bearer {self._key}", "content-type": "application/json"}
        try:
            async with self._session.post(self._base + path, data=orjson.dumps(payload),
                                          headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailable(f"the gateway at {self._base} cannot be reached "
                                     f"({type(exc).__name__})") from None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {}
        if status != 200:
            raise _error(status, body, path)
        return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _error(status: int, body: Any, path: str) -> ApiError:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = f"the gateway's /v1{path} answered {status}: {message or 'no error message'}"
    if status in (400, 404):  # e.g. a model the gateway does not serve: the caller must change it
        return InvalidRequest(text, param="embedding_model", code="model_not_found")
    return UpstreamError(text)
