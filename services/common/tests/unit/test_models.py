"""Which models a key's allowed_models patterns let through, and which patterns are refused."""

from __future__ import annotations

import pytest

from switchboard_common.models import model_allowed, pattern_problem


@pytest.mark.parametrize("patterns, model, allowed", [
    ((), "anything", True),  # no patterns: every model
    (("gpt-4o",), "", True),  # an empty model checks the key alone
    (("gpt-4o",), "gpt-4o", True),
    (("gpt-4o",), "gpt-4o-mini", False),  # exact names are exact
    (("gpt-4o*",), "gpt-4o-mini", True),
    (("gpt-4o*",), "gpt-4o", True),
    (("gpt-4o*",), "gpt-4", False),
    (("gpt-4o*",), "GPT-4o", False),  # case matters, as in provider APIs
    (("*",), "claude-3-5-sonnet", True),
    (("anthropic/*",), "anthropic/claude-3-opus", True),
    (("anthropic/*",), "anthropic", False),
    (("anthropic/*",), "openai/gpt-4o", False),
    (("claude-*", "gpt-4o"), "gpt-4o", True),
    (("claude-*", "gpt-4o"), "claude-3-haiku", True),
    (("claude-*", "gpt-4o"), "mistral-large", False),
])
def test_model_allowed(patterns, model, allowed):
    assert model_allowed(patterns, model) is allowed


@pytest.mark.parametrize("pattern", ["gpt-4o", "gpt-4*", "anthropic/*", "*", "a:b@c"])
def test_good_patterns(pattern):
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize("pattern", ["", " gpt-4o", "gpt-4o ", "gpt-*-mini", "**", "*gpt",
                                     "x" * 201])
def test_malformed_patterns_are_named(pattern):
    assert pattern_problem(pattern)
