"""Key generation, keyed hashing and the server secret file."""

from __future__ import annotations

import re
import stat
from concurrent.futures import ThreadPoolExecutor

from switchboard_auth.hashing import (SECRET_PREFIX, KeyHasher, display_prefix, generate_id,
                                      generate_secret, load_or_create_server_secret)


def test_generated_secrets_are_prefixed_random_and_url_safe():
    made = {generate_secret() for _ in range(200)}
    assert len(made) == 200
    for secret in made:
        assert secret.startswith(SECRET_PREFIX)
        assert re.fullmatch(r"sk-sb-[A-Za-z0-9_-]{43}", secret)


def test_ids_carry_their_prefix():
    assert re.fullmatch(r"key_[0-9a-f]{24}", generate_id("key"))
    assert generate_id("key") != generate_id("key")


def test_hash_is_hmac_under_the_server_secret():
    a, b = KeyHasher(b"server-one"), KeyHasher(b"server-two")
    secret = generate_secret()
    assert a.hash(secret) == a.hash(secret)
    assert a.hash(secret) != b.hash(secret)  # a stolen table is useless without the secret
    assert a.hash(secret) != a.hash(secret + "x")
    assert re.fullmatch(r"[0-9a-f]{64}", a.hash(secret))
    assert secret not in a.hash(secret)
    assert a.matches(secret, a.hash(secret))
    assert not a.matches(secret, b.hash(secret))


def test_display_prefix_never_shows_much_of_a_key():
    secret = generate_secret()
    assert display_prefix(secret) == secret[:8]
    assert display_prefix("sk-1234") == "s"  # a short master key keeps at most a quarter
    assert display_prefix("") == ""


def test_server_secret_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "dir" / "auth-hash-secret"
    first = load_or_create_server_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_server_secret(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["auth-hash-secret"]  # no temp files left


def test_processes_starting_together_agree_on_one_secret(tmp_path):
    path = tmp_path / "auth-hash-secret"
    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: load_or_create_server_secret(path), range(16)))
    assert len(secrets) == 1
