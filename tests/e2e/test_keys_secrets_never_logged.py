"""No service writes a key secret, the master key or a provider key to its logs, and auth's
database holds key secrets only as keyed hashes. Runs after the other key tests in this
directory, on the stacks they used, and looks for anything shaped like a Switchboard key."""

from __future__ import annotations

import re

from tests.e2e.test_keys_lifecycle import call, chat, ok

# The current format and the one before it (key_format.py).
KEY_SHAPES = re.compile(rb"sk-sb-[0-9A-Za-z]{49}|sk-sb-[A-Za-z0-9_-]{43}")


def test_no_secret_reaches_a_log_file_or_the_database(any_stack):
    stack = any_stack
    # Give every path a secret can take one more go: created, used, rotated, refused, revoked.
    created = ok(call(stack, "POST", "/api/keys", json={"name": "scan"}))
    secrets = [created["secret"]]
    ok(chat(stack, created["secret"]))
    rotated = ok(call(stack, "POST", f"/api/keys/{created['key']['key_id']}/rotate", json={}))
    secrets.append(rotated["secret"])
    chat(stack, created["secret"])  # refused now: the refusal must not echo it
    ok(call(stack, "DELETE", f"/api/keys/{created['key']['key_id']}"))
    chat(stack, rotated["secret"])

    logs = sorted(stack.logs.glob("*.log"))
    assert {p.stem for p in logs} >= {"auth", "router", "billing", "envoy"}, logs
    text = b"".join(p.read_bytes() for p in logs)
    for secret in [*secrets, stack.master_key, "sk-fake-upstream"]:
        assert secret.encode() not in text
    assert KEY_SHAPES.findall(text) == []
    stored = b"".join(p.read_bytes() for p in stack.data_dir.rglob("auth.db*"))
    for secret in secrets:
        assert secret.encode() not in stored
