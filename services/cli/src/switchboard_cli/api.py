"""The gateway's REST API as the CLI calls it: one httpx client, errors translated where they enter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

_MAX_TEXT = 500  # of a body that is not OpenAI's error JSON (a proxy's page), shown in the error


class ApiError(Exception):
    """The gateway answered with an error: its OpenAI-shaped `error` object and the HTTP status."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def __str__(self) -> str:
        detail = f"HTTP {self.status}" + (f", {self.code}" if self.code else "")
        return f"{self.message} ({detail})"


class Unreachable(Exception):
    """No HTTP answer at all: nothing listening, a timeout, a name that does not resolve."""


def segment(value: str) -> str:
    """One path segment (an id), escaped so that '/' or '?' in it cannot change the route."""
    return quote(value, safe="")


class Api:
    """Calls to one gateway with one key. The key is sent only as the bearer token, never echoed."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url
        self._key = api_key
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._json(self.send("GET", path, params=params))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._json(self.send("POST", path, json=body))

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self.send("PATCH", path, json=body))

    def delete(self, path: str) -> Any:
        return self._json(self.send("DELETE", path))

    def pages(self, path: str, field: str, params: dict[str, Any], *, page_size: int,
              limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list (AIP-158 page tokens), up to `limit` when given."""
        token, seen = "", 0
        while True:
            want = page_size if limit is None else min(page_size, limit - seen)
            page = self.get(path, {**params, "page_size": want, **({"page_token": token} if token else {})})
            for item in page.get(field, []):
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            token = page.get("next_page_token", "")
            if not token:
                return

    def stream(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        """A GET's body as it arrives (an export of any size), after checking its status."""
        try:
            with self._http.stream("GET", path, params=params) as resp:
                if resp.is_error:
                    resp.read()
                    raise self._error(resp)
                yield from resp.iter_bytes()
        except httpx.TimeoutException:
            raise Unreachable(f"the gateway at {self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the gateway at {self.base_url}: {self._masked(str(exc))}"
                              " (is it running? `make run` starts one on this machine)") from None

    def status(self, path: str) -> int:
        """The HTTP status of an unauthenticated GET (health probes), an error status included."""
        return self.send("GET", path, check=False).status_code

    def send(self, method: str, path: str, *, check: bool = True, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise Unreachable(f"the gateway at {self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the gateway at {self.base_url}: {self._masked(str(exc))}"
                              " (is it running? `make run` starts one on this machine)") from None
        if check and resp.is_error:
            raise self._error(resp)
        return resp

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise ApiError(resp.status_code, f"the gateway answered with something other than JSON: "
                           f"{self._masked(resp.text[:_MAX_TEXT])!r}") from None

    def _error(self, resp: httpx.Response) -> ApiError:
        try:
            error = resp.json()["error"]
            message = str(error["message"])
        except (ValueError, KeyError, TypeError):
            text = resp.text.strip()[:_MAX_TEXT]
            return ApiError(resp.status_code, self._masked(text) or resp.reason_phrase or "no message")
        return ApiError(resp.status_code, self._masked(message), code=error.get("code"),
                        param=error.get("param"))

    def _masked(self, text: str) -> str:
        # The gateway does not echo keys; this keeps the CLI's own key out of its output regardless.
        return text.replace(self._key, "[REDACTED]") if self._key else text
