"""Key generation, keyed hashing and the server secret file."""

from __future__ import annotations

import re
import stat
from concurrent.futures import ThreadPoolExecutor

from switchboard_auth.hashing import KeyHasher, load_or_create_server_secret
from switchboard_auth.key_format import generate_secret


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


def test_fingerprints_tell_secrets_apart_and_depend_on_the_salt():
    a, b = KeyHasher(b"server-one-secret"), KeyHasher(b"server-two-secret")
    salt = b"0123456789abcdef"
    assert a.fingerprint(salt) == a.fingerprint(salt)
    assert a.fingerprint(salt) != b.fingerprint(salt)
    assert a.fingerprint(salt) != a.fingerprint(b"fedcba9876543210")


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
