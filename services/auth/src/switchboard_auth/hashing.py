"""Keyed hashes of key secrets, the server secret they use, and its fingerprint."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

MIN_SECRET_BYTES = 16
_FINGERPRINT_CONTEXT = b"switchboard-auth hash-secret fingerprint v1"


class KeyHasher:
    """HMAC-SHA256 under a server secret: a stolen table alone cannot be brute-forced offline."""

    def __init__(self, server_secret: bytes) -> None:
        if not server_secret:
            raise ValueError("the hash secret is empty")
        self._secret = server_secret

    def hash(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def matches(self, key: str, stored_hash: str) -> bool:
        return hmac.compare_digest(self.hash(key), stored_hash)

    def fingerprint(self, salt: bytes) -> str:
        """A slow (scrypt) digest of the secret, stored in the database so replicas can tell they
        share it, without giving an offline guesser a fast oracle for a weak one."""
        digest = hashlib.scrypt(self._secret + _FINGERPRINT_CONTEXT, salt=salt, n=2**14, r=8,
                                p=1, dklen=32)
        return digest.hex()


def load_or_create_server_secret(path: Path) -> bytes:
    """Read the hash secret from `path`, creating it (mode 0600) on first run.

    The file appears atomically (written aside, then hard-linked into place), so two processes
    starting together agree on one secret and none ever reads a half-written file.
    """
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race; use its secret
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    value = path.read_text().strip().encode()
    if not value:
        raise SystemExit(f"the hash secret file {path} is empty; delete it or set "
                         "SWITCHBOARD_AUTH_HASH_SECRET")
    return value
