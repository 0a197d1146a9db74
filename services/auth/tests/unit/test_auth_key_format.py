"""The key format: prefix, 256 random bits in base62, a CRC32 checksum scanners can verify."""

from __future__ import annotations

import re
import zlib

from switchboard_auth.key_format import (SCANNER_PATTERN, SECRET_PREFIX, display_prefix,
                                         generate_id, generate_secret, has_valid_checksum, hint)

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _scanner_check(key: str) -> bool:
    """What a secret scanner does with only the documented format (module docstring)."""
    if not re.fullmatch(r"sk-sb-[0-9A-Za-z]{49}", key):
        return False
    crc, out = zlib.crc32(key[:-6].encode()), ""
    while crc:
        crc, digit = divmod(crc, 62)
        out = BASE62[digit] + out
    return out.rjust(6, "0") == key[-6:]


def test_generated_secrets_are_prefixed_random_and_checksummed():
    made = {generate_secret() for _ in range(300)}
    assert len(made) == 300
    for secret in made:
        assert secret.startswith(SECRET_PREFIX) and len(secret) == 55
        assert SCANNER_PATTERN.fullmatch(secret)
        assert has_valid_checksum(secret) and _scanner_check(secret)


def test_the_random_part_carries_at_least_192_bits():
    # 43 base62 digits hold 256 bits; every digit position varies across keys.
    made = [generate_secret()[6:49] for _ in range(400)]
    assert all(len({m[i] for m in made}) > 30 for i in range(1, 43))
    assert 62 ** 43 >= 2 ** 256 > 2 ** 192


def test_a_changed_character_breaks_the_checksum():
    secret = generate_secret()
    for i in (6, 20, 48, 54):
        flipped = secret[:i] + ("A" if secret[i] != "A" else "B") + secret[i + 1:]
        assert not has_valid_checksum(flipped) and not _scanner_check(flipped)
    assert not has_valid_checksum("sk-sb-" + "x" * 43)  # the old format carries none
    assert not has_valid_checksum(secret + "0")


def test_ids_carry_their_prefix():
    assert re.fullmatch(r"key_[0-9a-f]{24}", generate_id("key"))
    assert generate_id("key") != generate_id("key")


def test_prefix_and_hint_never_show_much_of_a_key():
    secret = generate_secret()
    assert display_prefix(secret) == secret[:8]
    assert hint(secret) == f"{secret[:8]}...{secret[-4:]}"
    assert display_prefix("sk-1234") == "s"  # a short master key keeps at most a quarter
    assert hint("sk-short-master-key") == "sk-s..."  # too short to show its end too
    assert display_prefix("") == ""
