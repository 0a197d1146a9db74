"""Provider credentials encrypted at rest: AES-256-GCM, the credential's id bound as associated data
(a sealed blob copied onto another credential's row does not open), under a key from the
environment or a key file, never from the database that holds the blobs.

A blob is `sb1` + the first 4 bytes of SHA-256 of the key that sealed it + a 12-byte random nonce
+ the ciphertext and its tag. The key id lets a router hold the current key and the previous ones
during a key rotation: it opens blobs sealed under any of them and seals only under the current
one (`needs_reseal` tells which blobs to write again). See README, "Key rotation".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"sb1"
KEY_ID_BYTES = 4
NONCE_BYTES = 12
KEY_VARIABLE = "SWITCHBOARD_CREDENTIALS_KEY"
KEY_FILE_VARIABLE = "SWITCHBOARD_CREDENTIALS_KEY_FILE"
PREVIOUS_VARIABLE = "SWITCHBOARD_CREDENTIALS_PREVIOUS_KEYS"  # comma-separated, during a rotation
_AAD_PREFIX = b"switchboard-provider-credential:"


class SealError(Exception):
    """A blob that does not open: not ours, sealed under an unknown key, tampered with, or bound
    to another credential id. The message never holds key material."""


class KeyConfigError(Exception):
    """The encryption key's settings are unusable; the message names the variable, not its value."""


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


def _aad(credential_id: str) -> bytes:
    return _AAD_PREFIX + credential_id.encode()


class Sealer:
    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        for key in (current, *previous):
            if len(key) != 32:
                raise KeyConfigError("an AES-256 key is 32 bytes")
        self._current_id = _key_id(current)
        self._current = AESGCM(current)
        self._by_id = {_key_id(k): AESGCM(k) for k in (*previous, current)}

    def seal(self, credential_id: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + self._current_id + nonce + self._current.encrypt(nonce, plaintext, _aad(credential_id))

    def open(self, credential_id: str, blob: bytes) -> bytes:
        head = len(MAGIC) + KEY_ID_BYTES
        if len(blob) < head + NONCE_BYTES + 16 or not blob.startswith(MAGIC):
            raise SealError(f"credential {credential_id}: not a sealed credential")
        aead = self._by_id.get(blob[len(MAGIC):head])
        if aead is None:
            raise SealError(f"credential {credential_id}: sealed under a key this router does not "
                            f"hold (add it to {PREVIOUS_VARIABLE} during a key rotation)")
        try:
            return aead.decrypt(blob[head:head + NONCE_BYTES], blob[head + NONCE_BYTES:],
                                _aad(credential_id))
        except InvalidTag:
            raise SealError(f"credential {credential_id}: does not open (tampered with, or "
                            "another credential's blob)") from None

    def needs_reseal(self, blob: bytes) -> bool:
        """Sealed under a previous key: to be sealed again under the current one."""
        return blob[len(MAGIC):len(MAGIC) + KEY_ID_BYTES] != self._current_id


def generate_key() -> str:
    """A new key as the settings take it: 32 random bytes, base64."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _decode(text: str, where: str) -> bytes:
    text = text.strip().replace("-", "+").replace("_", "/")  # standard or URL-safe alphabet
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{where}: not base64 (make one with `switchboard credentials "
                             "generate-key` or `openssl rand -base64 32`)") from None
    if len(key) != 32:
        raise KeyConfigError(f"{where}: decodes to {len(key)} bytes, an AES-256 key is 32")
    return key


def from_environment(env: Mapping[str, str]) -> Sealer | None:
    """The sealer the environment configures: the key in SWITCHBOARD_CREDENTIALS_KEY, or in the
    file SWITCHBOARD_CREDENTIALS_KEY_FILE names (a mounted secret, a KMS-decrypted file), with
    the previous keys of a rotation; None when neither is set (no stored credentials)."""
    inline, path = env.get(KEY_VARIABLE, ""), env.get(KEY_FILE_VARIABLE, "")
    if inline and path:
        raise KeyConfigError(f"set {KEY_VARIABLE} or {KEY_FILE_VARIABLE}, not both")
    if path:
        try:
            inline = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyConfigError(f"{KEY_FILE_VARIABLE}: cannot read {path}: "
                                 f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    if not inline.strip():
        if env.get(PREVIOUS_VARIABLE, "").strip():
            raise KeyConfigError(f"{PREVIOUS_VARIABLE} is set without a current key")
        return None
    current = _decode(inline, KEY_FILE_VARIABLE if path else KEY_VARIABLE)
    previous = [_decode(k, f"{PREVIOUS_VARIABLE}[{i}]")
                for i, k in enumerate(env.get(PREVIOUS_VARIABLE, "").split(",")) if k.strip()]
    return Sealer(current, previous)
