"""The built-in local model answers in OpenAI's exact shapes: every response and stream chunk
validates against OpenAI's OpenAPI schemas and parses with the `openai` package's models."""

from __future__ import annotations

import base64

import jsonschema_rs
import orjson
import pytest
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.providers.base import Call
from switchboard_router.providers.local import LocalProvider
from switchboard_router.tokens import Tokenizer
from tests.fuzz import openai_spec

DEP = Deployment(route="switchboard-local", name="local/echo", provider="local", model="echo",
                 weight=1, timeout_seconds=1, read_timeout_seconds=1, connect_timeout_seconds=1)
CHAT = {"messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Say something long."}]}],
        "n": 2, "max_tokens": 5}
# (endpoint, body, OpenAI's schema of the answer or of each chunk, the openai package's model)
CASES = [
    (Endpoint.CHAT, CHAT, "CreateChatCompletionResponse", ChatCompletion),
    (Endpoint.CHAT, {**CHAT, "stream": True}, "CreateChatCompletionStreamResponse",
     ChatCompletionChunk),
    (Endpoint.COMPLETIONS, {"prompt": ["one", "two"], "max_tokens": 0}, "CreateCompletionResponse",
     Completion),
    (Endpoint.COMPLETIONS, {"prompt": None, "stream": True}, "CreateCompletionResponse",
     None),  # the SDK builds chunks unvalidated: its Completion has no null finish_reason
    (Endpoint.EMBEDDINGS, {"input": ["a", [1, 2]], "dimensions": 8}, "CreateEmbeddingResponse",
     CreateEmbeddingResponse),
    (Endpoint.EMBEDDINGS, {"input": "a", "encoding_format": "base64"}, "CreateEmbeddingResponse",
     None),  # the SDK decodes base64 itself before its model sees it
]


def _as_sent(name: str, body: dict) -> dict:
    """OpenAI's schema, widened only where the spec describes a different wire than OpenAI sends:
    it reuses the whole-response schema for legacy completion chunks (whose finish_reason is null
    until the last, as OpenAI streams them) and types every embedding as an array of floats (a
    base64 request gets a string)."""
    schema = openai_spec.json_schema(name)
    if name == "CreateCompletionResponse" and body.get("stream"):
        choice = schema["properties"]["choices"]["items"]["properties"]
        choice["finish_reason"] = {"anyOf": [choice["finish_reason"], {"type": "null"}]}
    if name == "CreateEmbeddingResponse" and body.get("encoding_format") == "base64":
        item = schema["properties"]["data"]["items"]["properties"]
        item["embedding"] = {"type": "string"}
    return schema


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider(Tokenizer.load())


# Streams once without and once with stream_options.include_usage (its usage chunk).
RUNS = [(*case, usage) for case in CASES for usage in ((False, True) if case[1].get("stream") else (False,))]


@pytest.mark.parametrize(("endpoint", "body", "schema", "model", "include_usage"), RUNS,
                         ids=[f"{r[0].value}-{i}{'-usage' if r[4] else ''}" for i, r in enumerate(RUNS)])
async def test_local_answers_validate_against_openai_schemas(provider, endpoint, body, schema, model,
                                                            include_usage):
    call = Call(endpoint=endpoint, body=body, model="switchboard-local", upstream_model="echo",
                deployment=DEP, request_id="r1", include_usage=include_usage)
    if body.get("stream"):
        _, pieces = provider.stream(call)
        events = b"".join([p async for p in pieces]).split(b"\n\n")
        assert events[-2:] == [b"data: [DONE]", b""]
        documents = [orjson.loads(e.removeprefix(b"data: ")) for e in events[:-2]]
    else:
        documents = [orjson.loads((await provider.send(call)).data)]
    validator = jsonschema_rs.validator_for(_as_sent(schema, body))
    for doc in documents:
        errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
                  for e in validator.iter_errors(doc)]
        assert not errors, errors
        if model is not None:
            model.model_validate(doc)
    if body.get("encoding_format") == "base64":
        assert len(base64.b64decode(documents[0]["data"][0]["embedding"])) == 256 * 4
