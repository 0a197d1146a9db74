"""One hash secret per database: auth refuses to start with a secret other than the one its
database's keys were hashed with, so two replicas with different secrets never both serve (a key
made on one would be unknown to the other) and a lost secret file never silently voids every key.

The database keeps a salted scrypt fingerprint of the secret (`auth_settings`); the first auth
to start records its own, in one statement that a concurrent start cannot race.
"""

from __future__ import annotations

import secrets

import structlog

from switchboard_auth.hashing import KeyHasher
from switchboard_auth.repository import Repository

FINGERPRINT = "hash_secret_fingerprint"
_log = structlog.get_logger("secret_guard")


def mismatch_message(explicit: bool) -> str:
    where = ("SWITCHBOARD_AUTH_HASH_SECRET" if explicit else
             "the generated <data dir>/auth-hash-secret (no SWITCHBOARD_AUTH_HASH_SECRET is set)")
    return (f"auth refuses to start: its hash secret ({where}) is not the one this database's "
            "keys were hashed with. Every auth replica on one database must share one secret: "
            "set the same SWITCHBOARD_AUTH_HASH_SECRET for all of them. To replace the secret on "
            "purpose (every key made so far stops working), start once with "
            "SWITCHBOARD_AUTH_ACCEPT_NEW_HASH_SECRET=true.")


async def ensure_one_secret(repo: Repository, hasher: KeyHasher, *, explicit: bool,
                            accept_new: bool) -> None:
    salt = secrets.token_bytes(16)
    mine = f"{salt.hex()}:{hasher.fingerprint(salt)}"
    stored = await repo.claim_setting(FINGERPRINT, mine, replace=accept_new)
    if stored == mine:
        if accept_new:
            _log.warning("hash secret replaced on request; keys hashed with the old one no "
                         "longer work")
        return
    stored_salt, _, stored_digest = stored.partition(":")
    if not secrets.compare_digest(hasher.fingerprint(bytes.fromhex(stored_salt)), stored_digest):
        raise SystemExit(mismatch_message(explicit))
