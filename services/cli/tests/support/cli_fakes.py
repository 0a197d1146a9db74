"""A fake of the edge's REST API for the CLI's unit tests: answers in its shapes, keeps every request."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

CALLER_KEY = "sk-sb-callerCALLERcallerCALLERcallerCALLERcallerCALLE1abcde"
SECRET = "sk-sb-evojsMucrPsGTPV5la27WEVayZ8zB9XHpR2f4oJZZYl3b0hOH"

# A key as auth answers it through the edge (proto3 JSON: 64-bit integers as strings).
KEY: dict[str, Any] = {
    "key_id": "key_fde11b9516de1d7204fd97ca", "name": "app", "tenant_id": "default",
    "key_prefix": "sk-sb-ev", "allowed_models": ["gpt-4o*"],
    "rate_limits": {"requests_per_minute": 60, "tokens_per_minute": 100000, "tokens_per_day": "2000000"},
    "guardrail_policy_ids": [], "created_at": "2026-12-01T12:24:44.289878Z",
    "expires_at": "2099-12-31T00:00:00Z", "is_admin": False, "metadata": {"team": "search"},
    "user_id": "ana", "role": "member", "key_hint": "sk-sb-ev...0hOH",
    "updated_at": "2026-12-01T12:24:44.289878Z",
    "effective_rate_limits": {"requests_per_minute": 60, "tokens_per_minute": 100000,
                              "tokens_per_day": "2000000"},
}
TENANT: dict[str, Any] = {
    "tenant_id": "acme", "name": "Acme", "created_at": "2026-12-01T12:24:24.584497Z",
    "guardrail_policy_ids": [], "default_rate_limits": {"requests_per_minute": 120},
    "updated_at": "2026-12-01T12:24:24.584497Z",
}

Answer = Callable[[httpx.Request], httpx.Response] | tuple[int, Any]


def api_error(message: str, *, code: str | None = None, param: str | None = None,
              error_type: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


@dataclass
class FakeGateway:
    """Canned answers by (method, path); anything else is the edge's 404. Every request is kept."""

    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json=api_error("No such route.", code="not_found"))
        if callable(answer):
            return answer(request)
        status, body = answer
        return httpx.Response(status, json=body) if not isinstance(body, str) else httpx.Response(
            status, text=body)

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content or b"{}")


def paged(items: list[dict[str, Any]], field_name: str) -> Answer:
    """A list route that pages as the API does: page_size items, then an opaque next_page_token."""
    def answer(request: httpx.Request) -> httpx.Response:
        size = int(request.url.params.get("page_size", "100"))
        start = int(request.url.params.get("page_token", "") or 0)
        rest = start + size < len(items)
        return httpx.Response(200, json={field_name: items[start:start + size],
                                         "next_page_token": str(start + size) if rest else ""})
    return answer
