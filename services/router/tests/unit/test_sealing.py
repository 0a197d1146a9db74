"""Stored provider credentials sealed with AES-256-GCM, bound to their id, under rotatable keys."""

from __future__ import annotations

import base64
import os

import pytest

from switchboard_router import sealing
from switchboard_router.sealing import KeyConfigError, Sealer, SealError

SECRET = b"sk-live-provider-secret-1234"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_a_sealed_secret_opens_only_under_its_own_id():
    sealer = Sealer(os.urandom(32))
    blob = sealer.seal("pcred_a", SECRET)
    assert SECRET not in blob and blob.startswith(sealing.MAGIC)
    assert sealer.open("pcred_a", blob) == SECRET
    assert sealer.seal("pcred_a", SECRET) != blob  # a fresh nonce every time
    with pytest.raises(SealError, match="another credential"):
        sealer.open("pcred_b", blob)  # swapped onto another row: does not open


def test_tampering_and_foreign_blobs_are_refused_without_key_material():
    key = os.urandom(32)
    sealer = Sealer(key)
    blob = bytearray(sealer.seal("pcred_a", SECRET))
    blob[-1] ^= 1
    with pytest.raises(SealError) as exc:
        sealer.open("pcred_a", bytes(blob))
    assert b64(key) not in str(exc.value)
    with pytest.raises(SealError, match="not a sealed credential"):
        sealer.open("pcred_a", SECRET)
    with pytest.raises(SealError, match="does not hold"):
        Sealer(os.urandom(32)).open("pcred_a", sealer.seal("pcred_a", SECRET))


def test_key_rotation_opens_old_blobs_and_seals_under_the_new_key():
    old, new = os.urandom(32), os.urandom(32)
    blob = Sealer(old).seal("pcred_a", SECRET)
    rotating = Sealer(new, [old])
    assert rotating.open("pcred_a", blob) == SECRET and rotating.needs_reseal(blob)
    fresh = rotating.seal("pcred_a", SECRET)
    assert not rotating.needs_reseal(fresh)
    assert Sealer(new).open("pcred_a", fresh) == SECRET  # the old key can go now


def test_the_key_comes_from_the_environment_or_a_file(tmp_path):
    key = os.urandom(32)
    assert sealing.from_environment({}) is None
    inline = sealing.from_environment({sealing.KEY_VARIABLE: b64(key)})
    blob = inline.seal("c", SECRET)
    path = tmp_path / "credentials.key"
    path.write_text(base64.urlsafe_b64encode(key).decode().rstrip("=") + "\n")
    from_file = sealing.from_environment({sealing.KEY_FILE_VARIABLE: str(path)})
    assert from_file.open("c", blob) == SECRET
    old = os.urandom(32)
    both = sealing.from_environment({sealing.KEY_VARIABLE: b64(key),
                                     sealing.PREVIOUS_VARIABLE: f" {b64(old)} ,"})
    assert both.open("c", Sealer(old).seal("c", SECRET)) == SECRET


@pytest.mark.parametrize(("env", "says"), [
    ({sealing.KEY_VARIABLE: "not base64!"}, "SWITCHBOARD_CREDENTIALS_KEY: not base64"),
    ({sealing.KEY_VARIABLE: b64(os.urandom(16))}, "decodes to 16 bytes"),
    ({sealing.KEY_VARIABLE: b64(os.urandom(32)), sealing.KEY_FILE_VARIABLE: "/x"}, "not both"),
    ({sealing.KEY_FILE_VARIABLE: "/nonexistent/key"}, "cannot read /nonexistent/key"),
    ({sealing.PREVIOUS_VARIABLE: b64(os.urandom(32))}, "without a current key"),
    ({sealing.KEY_VARIABLE: b64(os.urandom(32)), sealing.PREVIOUS_VARIABLE: "zz"},
     "SWITCHBOARD_CREDENTIALS_PREVIOUS_KEYS[0]"),
])
def test_bad_key_settings_name_the_variable_never_the_value(env, says):
    with pytest.raises(KeyConfigError) as exc:
        sealing.from_environment(env)
    assert says in str(exc.value)
    assert not [v for v in env.values() if len(v) > 8 and v in str(exc.value) and not v.startswith("/")]


def test_generated_keys_are_accepted():
    assert sealing.from_environment({sealing.KEY_VARIABLE: sealing.generate_key()}) is not None
