"""What looks like a bearer token or an `sk-` key is masked; nothing else is touched."""

from __future__ import annotations

import pytest

from switchboard_common.redaction import MASK, redact, redact_bytes


@pytest.mark.parametrize("line, secret", [
    ("Invalid encoding on b'Bearer sk-sb-SECRETSECRET1234\\xe9'", "SECRETSECRET1234"),
    ('{"authorization": "Bearer eyJhbGciOi.J9.x"}', "eyJhbGciOi"),
    ("authorization: BEARER opaque-token", "opaque-token"),
    ("x-api-key=sk-proj-Abc_d-1234567890", "Abc_d-1234567890"),
    ("anthropic sk-ant-api03-xyzXYZ123", "api03-xyzXYZ123"),
    ("master sk-sb-master-q1w2e3r4t5y6", "q1w2e3r4t5y6"),
])
def test_secrets_are_masked(line, secret):
    masked = redact(line)
    assert secret not in masked and MASK in masked


@pytest.mark.parametrize("line", [
    '{"event":"rpc","code":"OK","method":"/switchboard.auth.v1.AuthService/Authorize"}',
    "task-12345678 and risk-assessment are words, not keys",
    "sk- alone, or sk-12 too short to be a key",
])
def test_other_text_is_left_as_it_is(line):
    assert redact(line) == line


def test_bytes_that_are_not_utf8_are_masked_too():
    # grpc-core's hpack trace writes the header as received, stray byte included.
    raw = b"HTTP:1:HDR:SVR: authorization: Bearer sk-sb-SECRETSECRET1234\xe9\n"
    assert redact_bytes(raw) == b"HTTP:1:HDR:SVR: authorization: Bearer " + MASK.encode() + b"\n"
    assert redact_bytes(b"no secret \xff here\n") == b"no secret \xff here\n"
