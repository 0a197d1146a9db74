"""The caller's key from metadata: Bearer first, then the Anthropic/Azure-style headers."""

from __future__ import annotations

import pytest

from switchboard_common.credentials import bearer_key


@pytest.mark.parametrize(("metadata", "key"), [
    ((("authorization", "Bearer sk-1"),), "sk-1"),
    ((("authorization", "  bearer   sk-1  "),), "sk-1"),  # the scheme is case-insensitive
    ((("x-api-key", "sk-2"),), "sk-2"),
    ((("api-key", " sk-3 "),), "sk-3"),
    # Bearer wins over the other headers wherever it stands.
    ((("x-api-key", "sk-2"), ("authorization", "Bearer sk-1")), "sk-1"),
    ((("authorization", "Bearer sk-1"), ("api-key", "sk-3")), "sk-1"),
    # Another scheme, or an empty Bearer, is no key; a key header still counts.
    ((("authorization", "Basic dXNlcjpwdw=="),), ""),
    ((("authorization", "Bearer "), ("x-api-key", "sk-2")), "sk-2"),
    ((("authorization", "sk-1"),), ""),
    ((("x-api-key", "  "), ("api-key", "sk-3")), "sk-3"),  # a blank header does not hide the next
    ((("x-request-id", "r-1"),), ""),
    ((), ""),
    (None, ""),
])
def test_bearer_key(metadata, key):
    assert bearer_key(metadata) == key
