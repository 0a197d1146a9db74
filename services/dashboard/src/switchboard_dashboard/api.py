"""The admin REST API, called through the edge with the logged-in user's own key.

The dashboard holds no key of its own: auth's role checks and tenant scoping apply to every call
exactly as they do to the same call made with curl.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp


class ApiError(Exception):
    """The edge answered with an error: its status and the OpenAI-shaped error's message."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def segment(value: str) -> str:
    """One path segment (an id), escaped so that '/' or '?' in it cannot change the route."""
    return quote(value, safe="")


class EdgeApi:
    def __init__(self, http: aiohttp.ClientSession, edge_url: str, timeout: float) -> None:
        self._http = http
        self._base = edge_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(self, key: str, method: str, path: str, *, params: dict[str, Any] | None = None,
                   body: dict[str, Any] | None = None) -> Any:
        headers = {"authorization": f"Bearer {key}"}
        try:
            async with self._http.request(method, self._base + path, params=params, json=body,
                                          headers=headers, timeout=self._timeout) as resp:
                try:
                    payload = await resp.json(content_type=None)
                except ValueError:
                    payload = None
                if resp.status >= 400:
                    raise _error(resp.status, payload)
                return payload
        except aiohttp.ClientError:
            raise ApiError(503, "The gateway's edge cannot be reached.") from None
        except TimeoutError:
            raise ApiError(504, "The gateway's edge did not answer in time.") from None


def _error(status: int, payload: Any) -> ApiError:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return ApiError(status, error["message"], error.get("code"))
    return ApiError(status, f"The gateway answered HTTP {status}.")
