"""Hand-built requests, one or more per class of bad input found against the gateway (issue 11),
each with the answer it must get. Cases of classes other helpers fix carry `pending`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fuzz.outcomes import Outcome, send, send_raw

LOCAL, EMBED, REMOTE = "switchboard-local", "switchboard-local-embed", "gpt-4o-mini"
MSG = [{"role": "user", "content": "hi"}]
CHAT, COMPLETIONS, EMBEDDINGS = "/v1/chat/completions", "/v1/completions", "/v1/embeddings"
HUGE = 150_000  # characters of a client value that once made a trailer too big for Envoy


@dataclass(frozen=True)
class Case:
    name: str
    body: Any = None  # a dict is sent as JSON; bytes as they are
    expect: tuple[int, ...] = (400,)
    path: str = CHAT
    method: str = "POST"
    param: str | None = None  # the error must name it
    key: str | None = "master"  # "master", None (no Authorization), or the header's whole value
    headers: dict[str, str | bytes] = field(default_factory=dict)
    raw: bytes | None = None  # a whole HTTP request, sent on a socket as it is
    pending: str | None = None  # the helper whose branch fixes this class (outcomes.PENDING)
    large: bool = False  # a documented large body: exempt from the 2 s bound

    def run(self, client: httpx.Client, base_url: str, master_key: str) -> Outcome:
        if self.raw is not None:
            return send_raw(base_url, self.raw.replace(b"{KEY}", master_key.encode()))
        headers: dict[str, str | bytes] = {"content-type": "application/json"}
        if self.key == "master":
            headers["authorization"] = f"Bearer {master_key}"
        elif self.key is not None:
            headers["authorization"] = self.key.replace("{KEY}", master_key).encode("latin-1")
        headers.update(self.headers)
        content = self.body if isinstance(self.body, bytes) or self.body is None else \
            json.dumps(self.body).encode()
        return send(client, self.method, base_url + self.path, headers, content)

    def check(self, outcome: Outcome) -> list[str]:
        """What is wrong with the answer; empty when it is the one this case must get."""
        problems = outcome.problems()
        if outcome.status not in self.expect:
            problems.append(f"unexpected status {outcome.status} (expected {self.expect}): "
                            f"{outcome.body[:160]!r}")
        elif self.param is not None and outcome.error_param() != self.param:
            problems.append(f"unexpected param {outcome.error_param()!r} (expected {self.param!r})")
        return problems


def _nested(depth: int) -> bytes:
    inner = depth - 1
    return (b'{"model": "switchboard-local", "messages": [{"role": "user", "content": "hi"}], '
            b'"x": ' + b"[" * inner + b"]" * inner + b"}")


def _chat(model: str = LOCAL, **fields) -> dict:
    return {"model": model, "messages": MSG, **fields}


CASES: list[Case] = [
    # --- Bounded work: every numeric field with a sane maximum, refused before any work ---------
    Case("dimensions past 2^31 on the local model", {"model": EMBED, "input": "hi",
         "dimensions": 2147483648}, path=EMBEDDINGS, param="dimensions"),
    Case("n of 100000", _chat(n=100_000), param="n"),
    Case("n of 100000, streamed", _chat(n=100_000, stream=True), param="n"),
    Case("n on legacy completions", {"model": LOCAL, "prompt": "x", "n": 100_000},
         path=COMPLETIONS, param="n"),
    Case("prompt [null]", {"model": LOCAL, "prompt": [None]}, path=COMPLETIONS, param="prompt[0]"),
    Case("prompt ['a', 5]", {"model": LOCAL, "prompt": ["a", 5]}, path=COMPLETIONS,
         param="prompt[1]"),
    Case("prompt [1000000000] on the local model", {"model": LOCAL, "prompt": [1_000_000_000]},
         path=COMPLETIONS, param="prompt"),
    Case("prompt of 2049 texts", {"model": LOCAL, "prompt": ["a"] * 2049}, path=COMPLETIONS,
         param="prompt"),
    *[Case(f"JSON nested {d} levels", _nested(d), param="x") for d in (255, 600, 1023)],
    *[Case(f"JSON nested {d} levels (past what can be read)", _nested(d)) for d in (1024, 1025)],
    Case("max_tokens of 2^40", _chat(max_tokens=2**40), param="max_tokens"),
    Case("max_completion_tokens of 0", _chat(max_completion_tokens=0),
         param="max_completion_tokens"),
    Case("top_logprobs of 21", _chat(top_logprobs=21), param="top_logprobs"),
    Case("logprobs of 6 on completions", {"model": LOCAL, "prompt": "x", "logprobs": 6},
         path=COMPLETIONS, param="logprobs"),
    Case("logit_bias of 2000 entries", _chat(logit_bias={str(i): 1 for i in range(2000)}),
         param="logit_bias"),
    Case("logit_bias value 1000", _chat(logit_bias={"50256": 1000}), param="logit_bias.50256"),
    Case("2049 messages", {"model": LOCAL, "messages": MSG * 2049}, param="messages"),
    Case("2049 content parts", {"model": LOCAL, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "x"}] * 2049}]},
         param="messages[0].content"),
    Case("129 tools", _chat(tools=[{"type": "function", "function": {"name": "f"}}] * 129),
         param="tools"),
    Case("5 stop sequences", _chat(stop=["a", "b", "c", "d", "e"]), param="stop"),
    Case("2049 embedding inputs", {"model": EMBED, "input": ["x"] * 2049}, path=EMBEDDINGS,
         param="input"),
    Case("2049 moderation inputs", {"input": ["x"] * 2049}, path="/v1/moderations", param="input"),
    Case("expires_in_seconds of 2^62", {"expires_in_seconds": 4611686018427387904},
         path="/api/keys", param="expires_in_seconds"),
    Case("a 10 MiB prompt to the local model", _chat(messages=[
        {"role": "user", "content": "word " * (2 * 1024 * 1024)}]), param="messages", large=True),
    Case("10 MiB of embedding input to the local model", {"model": EMBED, "input": [
        "word " * 1024 * 1024] * 2}, path=EMBEDDINGS, param="input", large=True),
    Case("512 x 257 embedding numbers from the local model", {"model": EMBED, "input": ["x"] * 512,
         "dimensions": 257}, path=EMBEDDINGS, param="dimensions"),
    # --- Documented scalar fields are type- and range-checked (issue 10) -----------------------
    Case("temperature 'hot' on the local model", _chat(temperature="hot"), param="temperature"),
    Case("temperature 'hot' on a remote model", _chat(REMOTE, temperature="hot"),
         param="temperature"),
    Case("temperature 2.5", _chat(temperature=2.5), param="temperature"),
    Case("top_p 1.5", _chat(REMOTE, top_p=1.5), param="top_p"),
    Case("presence_penalty -3", _chat(presence_penalty=-3), param="presence_penalty"),
    Case("seed as a string", _chat(seed="42"), param="seed"),
    Case("user as a number", _chat(user=7), param="user"),
    Case("stream as a string", _chat(stream="yes"), param="stream"),
    Case("response_format of an unknown type", _chat(response_format={"type": "regex"}),
         param="response_format.type"),
    Case("response_format json_schema without its schema", _chat(
        response_format={"type": "json_schema"}), param="response_format.json_schema"),
    Case("encoding_format int8", {"model": EMBED, "input": "x", "encoding_format": "int8"},
         path=EMBEDDINGS, param="encoding_format"),
    # --- Client values echoed in messages are truncated ----------------------------------------
    Case("a 150 KB role", {"model": LOCAL, "messages": [{"role": "r" * HUGE, "content": "x"}]},
         param="messages[0].role"),
    Case("a 150 KB model", _chat("m" * HUGE), expect=(404,), param="model"),
    Case("a 150 KB tenant_id", {"tenant_id": "t" * HUGE}, path="/api/keys", expect=(400, 404)),
    Case("a 150 KB field name", {**_chat(), "k" * HUGE: 1}, expect=(200,)),
    Case("a 150 KB logit_bias key", _chat(logit_bias={"1" * HUGE: 1000}), param=None),
    Case("a logit_bias key with a newline and non-ASCII", _chat(logit_bias={"caf\u00e9\n": 1000}),
         param="logit_bias.caf\\xe9\\n"),  # escaped: it made an illegal trailer, an empty 500
    # --- What OpenAI accepts is accepted --------------------------------------------------------
    Case("prompt null", {"model": LOCAL, "prompt": None}, path=COMPLETIONS, expect=(200,)),
    Case("max_tokens 0 on completions", {"model": LOCAL, "prompt": "hi", "max_tokens": 0},
         path=COMPLETIONS, expect=(200,)),
    Case("nullable fields set to null", _chat(temperature=None, top_p=None, n=None, stop=None,
         seed=None, stream=None, logit_bias=None), expect=(200,)),
    Case("a strict json_schema response_format", _chat(response_format={
        "type": "json_schema", "json_schema": {"name": "a", "strict": True, "schema": {
            "type": "object", "properties": {}, "additionalProperties": False}}}), expect=(200,)),
    Case("unknown fields are kept", _chat(brand_new={"a": [1, None]}), expect=(200,)),
    Case("nested 254 levels", _nested(254), expect=(200,)),
    Case("a 1 MiB prompt to the local model", _chat(messages=[
        {"role": "user", "content": "word " * 200_000}]), expect=(200,), large=True),
    # --- Edge: errors shaped on every path, header and body sizes (helper edge) -----------------
    Case("a path id that is not UTF-8", None, method="GET", path="/api/keys/%ff%fe",
         expect=(400, 404)),
    Case("gRPC content type on a REST route", _chat(), expect=(400, 415),
         headers={"content-type": "application/grpc"}),
    *[Case(f"request headers of {kb} KB", _chat(), expect=(200, 431),
           headers={"x-pad": "a" * kb * 1024}) for kb in (10, 14, 16)],
    Case("request headers of 70 KB", _chat(), expect=(431,), headers={"x-pad": "a" * 70 * 1024}),
    Case("a declared Content-Length far over the limit", raw=(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {KEY}\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{}"),
         expect=(413,)),
    Case("an Authorization header with a non-ASCII byte", _chat(), key="Bearer {KEY}\xe9",
         expect=(401,)),  # the edge is to refuse it first; that it is never logged: see the tests
    Case("a wrong method on a REST route", None, method="GET", expect=(404, 405)),
    Case("a path under /v1 the gateway does not serve", {"a": 1}, path="/v1/threads",
         expect=(404,)),
    # --- The key before the body (helper streams) -----------------------------------------------
    Case("bad JSON and no key", b"{nope", key=None, expect=(401,)),
    Case("bad JSON and a wrong key", b"{nope", key="Bearer sk-wrong", expect=(401,)),
    Case("bad JSON with a key", b"{nope", expect=(400,)),
    Case("a body that is not an object", b"[1, 2]", expect=(400,)),
    Case("a body that is not UTF-8", b'{"model": "\xff"}', expect=(400,)),
]
