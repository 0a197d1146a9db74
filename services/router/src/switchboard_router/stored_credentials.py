"""Provider credentials added through /api/credentials (admin keys only), without a restart.

Where they live, and why there: auth's database holds them (it is the one store the gateway
already migrates, backs up and replicates, and auth already announces changes to every router on
NATS), but auth only ever sees ciphertext. The router seals a secret (sealing.py, AES-256-GCM, the
credential id as associated data) before it hands it to auth, and opens it only in its own
memory, so the encryption key exists only in the routers' environment and a copy of the database
(or of auth's logs, or an auth compromise) yields no provider key. The other way round (auth
decrypts and hands plaintext to the routers over an internal RPC) would put the key and every
secret in a second service and on the wire.

Every router replica reloads the whole set when auth announces a change (`credentials.changed`),
when it (re)connects to NATS, and at start; the set is small (one row per key).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import grpc
import structlog
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_common import errors, grpc_client
from switchboard_common.errors import InvalidRequest, NotFound, ServiceUnavailable

from switchboard_router import keyring, oauth
from switchboard_router.domain import ProviderSpec
from switchboard_router.keyring import StoredKey
from switchboard_router.oauth import OAuthCodec, OAuthToken, TokenSet
from switchboard_router.providers.remote import RemoteProvider
from switchboard_router.sealing import KEY_FILE_VARIABLE, KEY_VARIABLE, Sealer, SealError

_log = structlog.get_logger("credentials")
MAX_SECRET_CHARS = 4096
ID_PREFIX = "pcred_"
REFRESH_SECONDS = 60.0
_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


@dataclass(frozen=True, slots=True)
class CredentialView:
    """A stored credential as the admin API shows it: the hint, never the secret."""

    credential_id: str
    provider: str
    hint: str
    weight: int
    rpm: int | None
    created_at: datetime | None
    updated_at: datetime | None


class SealedStore:
    """Auth's store of sealed credentials, over gRPC with a deadline on every call."""

    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, _SERVICE)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def put(self, credential: auth_pb2.SealedCredential, *, create: bool) -> auth_pb2.SealedCredential:
        return await self._call(self._stub.SetSealedCredential(
            auth_pb2.SetSealedCredentialRequest(credential=credential, create=create), timeout=self._timeout))

    async def list(self, provider: str = "") -> list[auth_pb2.SealedCredential]:
        reply = await self._call(self._stub.ListSealedCredentials(
            auth_pb2.ListSealedCredentialsRequest(provider=provider), timeout=self._timeout))
        return list(reply.credentials)

    async def delete(self, credential_id: str) -> auth_pb2.SealedCredential:
        return await self._call(self._stub.DeleteSealedCredential(
            auth_pb2.DeleteSealedCredentialRequest(credential_id=credential_id), timeout=self._timeout))

    @staticmethod
    async def _call(pending):
        try:
            return await pending
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, service="auth") from None

    async def close(self) -> None:
        await self._channel.close()


def _view(c: auth_pb2.SealedCredential) -> CredentialView:
    return CredentialView(
        credential_id=c.credential_id, provider=c.provider, hint=c.hint, weight=c.weight or 1,
        rpm=c.rpm or None,
        created_at=c.created_at.ToDatetime() if c.HasField("created_at") else None,
        updated_at=c.updated_at.ToDatetime() if c.HasField("updated_at") else None)


class StoredCredentials:
    def __init__(self, store: SealedStore, sealer: Sealer | None,
                 providers: Mapping[str, object], specs: Mapping[str, ProviderSpec]) -> None:
        self._store = store
        self._sealer = sealer
        # The providers a key may be stored for: the enabled remote ones of switchboard.yaml.
        self._providers = {n: p for n, p in providers.items() if isinstance(p, RemoteProvider)}
        self._specs = specs
        # OAuth credentials (providers with `oauth:`): one token holder each, kept across reloads.
        self._tokens: dict[str, OAuthToken] = {}
        self._lease: oauth.Lease = oauth.no_lease
        self._reloading: asyncio.Task | None = None
        self._refreshing: asyncio.Task | None = None
        self._again = False

    # --- the admin API -------------------------------------------------------------------------

    async def create(self, provider: str, secret: str, weight: int, rpm: int) -> CredentialView:
        sealer = self._need_sealer()
        self._check_provider(provider)
        secret, shown = self._check_secret(provider, secret)
        weight, limit = _check_limits(weight, rpm)
        credential_id = ID_PREFIX + secrets.token_hex(12)
        stored = await self._store.put(auth_pb2.SealedCredential(
            credential_id=credential_id, provider=provider, hint=shown,
            sealed=sealer.seal(credential_id, secret.encode()), weight=weight, rpm=limit or 0),
            create=True)
        await self.reload()  # this replica at once; the others on credentials.changed
        _log.info("provider credential added", credential_id=credential_id, provider=provider,
                  hint=stored.hint)
        return _view(stored)

    async def list(self, provider: str = "") -> list[CredentialView]:
        return [_view(c) for c in await self._store.list(provider)]

    async def get(self, credential_id: str) -> CredentialView:
        return _view(await self._find(credential_id))

    async def rotate(self, credential_id: str, secret: str) -> CredentialView:
        sealer = self._need_sealer()
        current = await self._find(credential_id)
        secret, shown = self._check_secret(current.provider, secret)
        stored = await self._store.put(auth_pb2.SealedCredential(
            credential_id=credential_id, provider=current.provider, hint=shown,
            sealed=sealer.seal(credential_id, secret.encode()), weight=current.weight or 1,
            rpm=current.rpm), create=False)
        await self.reload()
        _log.info("provider credential rotated", credential_id=credential_id, hint=stored.hint)
        return _view(stored)

    async def delete(self, credential_id: str) -> CredentialView:
        current = await self._find(credential_id)
        spec = self._specs.get(current.provider)
        if spec is not None and spec.oauth is not None and self._sealer is not None:
            try:  # revoked at the provider too, when it has a revocation endpoint
                tokens = oauth.parse_secret(self._sealer.open(credential_id, current.sealed).decode())
                await oauth.revoke(spec.oauth, tokens, current.provider, credential_id)
            except (SealError, UnicodeDecodeError, InvalidRequest):
                _log.warning("stored OAuth credential not revoked at the provider: it does not open",
                             credential_id=credential_id)
        removed = await self._store.delete(credential_id)
        await self.reload()
        _log.info("provider credential removed", credential_id=credential_id)
        return _view(removed)

    # --- keeping every replica's key rings current ----------------------------------------------

    async def reload(self) -> None:
        """Open every stored credential and give each provider its keys. A credential that does
        not open (sealed under a key this router lacks, tampered with) is left out and logged by
        id; one sealed under a previous key is sealed again under the current one."""
        if self._sealer is None:
            return
        by_provider: dict[str, list[StoredKey]] = {name: [] for name in self._providers}
        for c in await self._store.list():
            if c.provider not in by_provider:
                _log.warning("stored credential for a provider this router does not serve",
                             credential_id=c.credential_id, provider=c.provider)
                continue
            try:
                secret = self._sealer.open(c.credential_id, c.sealed).decode()
            except (SealError, UnicodeDecodeError) as exc:
                _log.error("stored credential does not open", credential_id=c.credential_id,
                           reason=str(exc) if isinstance(exc, SealError) else "not text")
                continue
            if self._sealer.needs_reseal(c.sealed):
                await self._reseal(c, secret)
            spec = self._specs[c.provider]
            if spec.oauth is None:
                by_provider[c.provider].append(StoredKey(c.credential_id, secret, c.weight or 1,
                                                         c.rpm or None))
            elif spec.oauth.grant == "client_credentials":
                _log.warning("stored credential for a client-credentials provider left out",
                             credential_id=c.credential_id, provider=c.provider)
            elif (key := self._oauth_key(c, spec, secret)) is not None:
                by_provider[c.provider].append(key)
        live = {k.ident for keys in by_provider.values() for k in keys}
        for gone in set(self._tokens) - live:
            del self._tokens[gone]
        for name, stored in by_provider.items():
            self._providers[name].install_stored(stored)

    def _oauth_key(self, c: auth_pb2.SealedCredential, spec: ProviderSpec, secret: str) -> StoredKey | None:
        """An OAuth credential's key: its token holder (kept across reloads, taking the newer
        set), and a codec that gets a current access token before each request."""
        assert spec.oauth is not None
        try:
            tokens = oauth.parse_secret(secret)
        except InvalidRequest:
            _log.error("stored OAuth credential is not a token set", credential_id=c.credential_id)
            return None
        holder = self._tokens.get(c.credential_id)
        if holder is None:
            holder = self._tokens[c.credential_id] = OAuthToken(
                c.credential_id, c.provider, spec.oauth, tokens, self, self._lease)
        else:
            holder.adopt(tokens)
        # Its identity in the key ring: the credential and its login's hint, so a refresh keeps
        # the key's state and a new login (a rotation) starts it afresh (an invalid key revives).
        return StoredKey(c.credential_id, f"oauth:{c.credential_id}:{c.hint}", c.weight or 1, c.rpm or None,
                         hint=c.hint, wrap=lambda make, s: OAuthCodec(make, s, holder))

    # --- the vault OAuth token holders read and write (oauth.Vault) -------------------------------

    def use_lease(self, lease: oauth.Lease) -> None:
        """The cross-replica lease refreshes are made under (oauth_lock: NATS KV)."""
        self._lease = lease
        for holder in self._tokens.values():
            holder.lease = lease

    async def load(self, credential_id: str) -> TokenSet | None:
        assert self._sealer is not None
        for c in await self._store.list():
            if c.credential_id == credential_id:
                try:
                    return oauth.parse_secret(self._sealer.open(credential_id, c.sealed).decode())
                except (SealError, UnicodeDecodeError, InvalidRequest):
                    return None
        return None

    async def save(self, credential_id: str, tokens: TokenSet) -> None:
        """A refreshed token set, sealed and stored at once (a rotated refresh token must not be
        lost); every replica reloads it on credentials.changed. Its hint stays the login's."""
        assert self._sealer is not None
        current = await self._find(credential_id)
        fresh = auth_pb2.SealedCredential()
        fresh.CopyFrom(current)
        fresh.sealed = self._sealer.seal(credential_id, tokens.to_json().encode())
        await self._store.put(fresh, create=False)

    async def _reseal(self, c: auth_pb2.SealedCredential, secret: str) -> None:
        assert self._sealer is not None
        fresh = auth_pb2.SealedCredential()
        fresh.CopyFrom(c)
        fresh.sealed = self._sealer.seal(c.credential_id, secret.encode())
        try:
            await self._store.put(fresh, create=False)
            _log.info("stored credential sealed under the current key", credential_id=c.credential_id)
        except errors.ApiError as exc:  # another replica may have done it, or removed it
            _log.warning("reseal failed", credential_id=c.credential_id, error=exc.code)

    def start(self) -> None:
        """Load them now, and again every REFRESH_SECONDS in case a credentials.changed was
        missed while NATS was away."""
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        while True:
            self.changed()
            await asyncio.sleep(REFRESH_SECONDS)

    def changed(self) -> None:
        """credentials.changed (or a NATS reconnect): reload soon, once however many arrive."""
        if self._reloading is not None and not self._reloading.done():
            self._again = True
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload_now())

    async def _reload_now(self) -> None:
        while True:
            self._again = False
            try:
                await self.reload()
            except errors.ApiError as exc:
                _log.warning("could not reload stored credentials", error=exc.code)
            if not self._again:
                return

    async def close(self) -> None:
        for task in (self._refreshing, self._reloading):
            if task is not None:
                task.cancel()
        await self._store.close()

    # --- checks ----------------------------------------------------------------------------------

    def _need_sealer(self) -> Sealer:
        if self._sealer is None:
            raise ServiceUnavailable(
                f"Stored provider credentials need an encryption key: set {KEY_VARIABLE} (or "
                f"{KEY_FILE_VARIABLE}) on every router.", code="credentials_key_not_set")
        return self._sealer

    def _check_provider(self, provider: str) -> None:
        if provider in self._providers:
            return
        spec = self._specs.get(provider)
        if spec is not None and spec.type != "local" and not spec.enabled:
            why = (f"Provider '{provider}' is disabled (it has no key in switchboard.yaml); "
                   "write `api_keys: []` for it to take its keys from /api/credentials.")
        else:
            why = (f"Unknown provider '{provider}': a key can be stored for a provider of "
                   f"switchboard.yaml that calls a remote API (known: {', '.join(sorted(self._providers))}).")
        raise InvalidRequest(why, param="provider", code="invalid_value")

    def _check_secret(self, provider: str, secret: str) -> tuple[str, str]:
        """The secret to seal and its hint: an API key, or for an OAuth provider a token set."""
        spec = self._specs.get(provider)
        if spec is not None and spec.oauth is not None and spec.oauth.grant == "client_credentials":
            raise InvalidRequest(f"Provider '{provider}' gets its OAuth token by the "
                                 "client-credentials grant of its `oauth:` section: there is no "
                                 "credential to store.", param="provider", code="invalid_value")
        if spec is not None and spec.oauth is not None:
            tokens = oauth.parse_secret(secret.strip())
            return tokens.to_json(), tokens.hint()
        secret = _check_secret(secret)
        return secret, keyring.hint(secret)

    async def _find(self, credential_id: str) -> auth_pb2.SealedCredential:
        for c in await self._store.list():
            if c.credential_id == credential_id:
                return c
        raise NotFound(f"No provider credential '{credential_id}'.", param="credential_id",
                       code="credential_not_found")


def _check_secret(secret: str) -> str:
    secret = secret.strip()
    if not secret:
        raise InvalidRequest("'secret' is required: the provider's API key.", param="secret",
                             code="missing_required_parameter")
    if len(secret) > MAX_SECRET_CHARS or not secret.isascii() or not secret.isprintable():
        raise InvalidRequest(f"'secret' must be printable ASCII of at most {MAX_SECRET_CHARS} "
                             "characters (it travels in an HTTP header).", param="secret",
                             code="invalid_value")
    return secret


def _check_limits(weight: int, rpm: int) -> tuple[int, int | None]:
    if weight < 0 or weight > 1000:
        raise InvalidRequest("'weight' must be 1 to 1000 (default 1).", param="weight",
                             code="invalid_value")
    if rpm < 0:
        raise InvalidRequest("'rpm' must be at least 1, or left out for no limit of its own.",
                             param="rpm", code="invalid_value")
    return weight or 1, rpm or None
