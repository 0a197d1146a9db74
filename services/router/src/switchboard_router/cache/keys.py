"""The cache key: a hash of the request as it decides the answer, in a canonical form.

Everything in the body counts (messages, tools, tool_choice, response_format, every sampling
parameter, unknown fields too, since they reach the provider), with the model replaced by the
group the name resolves to (an alias and its group share answers), `stream` made explicit (a
stream and a JSON answer are different bytes), the endpoint and the caller's tenant (tenants
never share an entry), and the key's allowed_models where it has them (a fallback may answer one
key with a model another key of the tenant may not use: keys restricted differently never share
an entry). JSON with sorted keys at every level, so the order of fields is irrelevant;
BLAKE2b, 32 bytes."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from switchboard_router.domain import Endpoint

VERSION = 1  # bump when what goes into a key changes: old entries then simply miss
_LEFT_OUT = ("model", "stream")


def cache_key(endpoint: Endpoint, tenant_id: str, model: str, body: dict[str, Any],
              stream: bool, messages_body: dict[str, Any] | None = None,
              allowed_models: frozenset[str] = frozenset()) -> str:
    """`messages_body`: a /v1/messages request's own body, which may pass through to the provider
    as it is (fields its chat translation lacks, such as cache_control, change the answer), and
    whose answer may be in Anthropic's format: its own key, never a chat request's."""
    rest = {k: v for k, v in body.items() if k not in _LEFT_OUT}
    key: dict[str, Any] = {"v": VERSION, "endpoint": endpoint.value, "tenant": tenant_id,
                           "model": model, "stream": stream, "body": rest}
    if allowed_models:
        key["allowed_models"] = sorted(allowed_models)
    if messages_body is not None:
        key["messages"] = {k: v for k, v in messages_body.items() if k not in _LEFT_OUT}
    canonical = orjson.dumps(key, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(canonical, digest_size=32).hexdigest()
