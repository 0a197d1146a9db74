"""Hypothesis strategies for requests a careless or hostile client sends: documented fields set to
values of every type and at every bound OpenAI's spec gives, broken JSON, odd headers and paths."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from switchboard_router.openai_fields import documented_fields

MODELS = ["switchboard-local", "switchboard-local-embed", "gpt-4o-mini", "no-such-model", ""]
ROUTES = {  # path: the endpoint whose documented fields it takes
    "/v1/chat/completions": "chat.completions", "/v1/completions": "completions",
    "/v1/embeddings": "embeddings", "/v1/moderations": "moderations",
}
OTHER_PATHS = ["/v1/models", "/v1/models/switchboard-local", "/v1/models/openai%2Fgpt-4o-mini",
               "/api/keys", "/api/tenants", "/api/billing/spend", "/api/billing/usage",
               "/api/routing/stats", "/healthz", "/v1/messages", "/v1/", "/nope"]
ROLES = ["system", "developer", "user", "assistant", "tool", "function", "robot", ""]
LARGE_BODY = 1024 * 1024
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)  # what a header value may hold


@dataclass
class Probe:
    name: str
    method: str
    path: str
    headers: dict[str, str | bytes] = field(default_factory=dict)
    body: bytes | None = None
    pending: str | None = None  # a class another helper fixes (outcomes.PENDING)

    @property
    def large(self) -> bool:
        return self.body is not None and len(self.body) > LARGE_BODY


scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=10)


def _near_bounds(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values at and just past what the field's schema allows, and of other types."""
    options: list[Any] = []
    for branch in [schema, *(schema.get("anyOf") or schema.get("oneOf") or ())]:
        for key in ("minimum", "maximum"):
            if isinstance(branch.get(key), (int, float)):
                bound = branch[key]
                options += [bound, bound - 1, bound + 1, bound * 1000, -bound - 0.5]
        options += list(branch.get("enum") or ())
        if branch.get("maxItems"):
            options.append(["x"] * (branch["maxItems"] + 1))
    options += [2**31, 2**63, -(2**63) - 1, 2**64 + 1, 1e308, -1, 0, 0.5, "", [], {}, None]
    return st.sampled_from(options) | json_values


def _message() -> st.SearchStrategy[Any]:
    content = (st.text(max_size=200) | st.none() | json_values
               | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "x"]),
                                                 "text": st.text(max_size=50) | json_values}),
                          max_size=3))
    return st.fixed_dictionaries({"role": st.sampled_from(ROLES) | json_values,
                                  "content": content}) | json_values


def _base(endpoint: str, model: str) -> dict[str, Any]:
    if endpoint == "chat.completions":
        return {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    if endpoint == "completions":
        return {"model": model, "prompt": "hello"}
    if endpoint == "embeddings":
        return {"model": model, "input": "hello"}
    return {"input": "hello"}


@st.composite
def bodies(draw: st.DrawFn, endpoint: str) -> dict[str, Any]:
    fields = documented_fields()[endpoint]
    body = _base(endpoint, draw(st.sampled_from(MODELS) | st.text(max_size=20)))
    for name in draw(st.lists(st.sampled_from(sorted(fields) or ["user"]), max_size=4,
                              unique=True)):
        body[name] = draw(_near_bounds(fields.get(name, {})))
    if endpoint == "chat.completions" and draw(st.booleans()):
        body["messages"] = draw(st.lists(_message(), max_size=4) | json_values)
    if endpoint == "completions" and draw(st.booleans()):
        body["prompt"] = draw(json_values | st.lists(st.integers(-5, 300_000), max_size=5))
    if endpoint in ("embeddings", "moderations") and draw(st.booleans()):
        body["input"] = draw(json_values | st.lists(st.integers(-5, 300_000), max_size=5))
    if draw(st.integers(0, 9)) == 0:
        body.pop(draw(st.sampled_from(sorted(body))), None)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(min_size=1, max_size=20))] = draw(json_values)  # an unknown field
    return body


@st.composite
def raw_bodies(draw: st.DrawFn, body: dict[str, Any]) -> bytes:
    """The body as JSON, or broken on purpose."""
    data = json.dumps(body).encode()
    how = draw(st.integers(0, 19))
    if how == 0:
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]  # cut short
    if how == 1:
        return draw(st.binary(max_size=200))
    if how == 2:
        depth = draw(st.integers(200, 1100))
        return data[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    if how == 3:
        return json.dumps(draw(json_values)).encode()  # maybe not an object at all
    if how == 4:
        return data.replace(b"hello", "h\u00e9llo \U0001f600".encode())
    return data


def _headers(draw: st.DrawFn, master_key: str) -> tuple[dict[str, str | bytes], str | None]:
    headers: dict[str, str | bytes] = {"content-type": "application/json"}
    pending = None
    auth = draw(st.integers(0, 19))
    if auth < 14:
        headers["authorization"] = f"Bearer {master_key}"
    elif auth == 14:
        pass  # no key
    elif auth == 15:
        headers["authorization"] = "Bearer " + draw(st.text("abcdefghijklmnopqrstuvwxyz-_",
                                                            min_size=1, max_size=60))
    elif auth == 16:
        headers["authorization"] = f"Bearer {master_key}\xe9".encode("latin-1")
    elif auth == 17:
        headers["authorization"] = master_key  # no "Bearer"
    else:
        headers["authorization"] = "Bearer " + "k" * draw(st.integers(100, 6000))
    kind = draw(st.integers(0, 19))
    if kind == 0:
        headers["content-type"] = "text/plain"
    elif kind == 1:
        del headers["content-type"]
    elif kind == 2:
        headers["content-type"] = "application/grpc"
    for _ in range(draw(st.integers(0, 2))):
        name = "x-" + draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20))
        big = draw(st.integers(0, 24)) == 0
        headers[name] = "v" * draw(st.sampled_from([9000, 15000] if big else [0, 1, 100, 1000, 4000]))
    if draw(st.integers(0, 9)) == 0:
        headers["x-request-id"] = draw(st.text(_PRINTABLE, min_size=1, max_size=80)).strip() or "r"
    return headers, pending


@st.composite
def probes(draw: st.DrawFn, master_key: str) -> Probe:
    headers, pending = _headers(draw, master_key)
    if draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from(OTHER_PATHS))
        method = draw(st.sampled_from(["GET", "GET", "POST", "DELETE", "PATCH", "PUT"]))
        body = None if method in ("GET", "DELETE") else draw(raw_bodies(draw(json_values.map(
            lambda v: v if isinstance(v, dict) else {"value": v}))))
        if draw(st.integers(0, 3)) == 0 and path.startswith("/api/keys"):
            path = "/api/keys/" + draw(st.sampled_from(["%ff%fe", "%00", "a" * 300, "key_x", "%2F"]))
        return Probe(f"{method} {path}", method, path, headers, body, pending)
    path = draw(st.sampled_from(sorted(ROUTES)))
    method = "POST" if draw(st.integers(0, 19)) else draw(st.sampled_from(["GET", "PUT", "DELETE"]))
    body = draw(raw_bodies(draw(bodies(ROUTES[path]))))
    return Probe(f"{method} {path}", method, path, headers, body, pending)
