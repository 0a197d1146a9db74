"""OAuth credentials of a provider (`oauth:` in switchboard.yaml): the token sets a device-code
login stored through /api/credentials, their access tokens refreshed before they expire; or, with
`grant: client_credentials` (RFC 6749 §4.4), one token the router gets itself at first use and
again before it expires, with no login and nothing stored.

Authlib's AsyncOAuth2Client speaks to the token endpoint (client authentication, the
refresh_token and client_credentials grants, error answers as OAuthError). Around it, what
Authlib's own lock cannot do:
- single-flight within a replica: one asyncio.Lock per credential, so twenty requests on an
  expired token wait for one refresh;
- single-flight across replicas: a lease every replica sees (oauth_lock.py), and inside it the
  stored token set read again, so a replica that waited adopts the token another one got;
- rotation: a new refresh token is sealed and stored (auth, through stored_credentials) before
  the new access token is used, so no replica is left holding a revoked refresh token.
A failed refresh is a 503 `token_refresh_failed` with the provider's reason (`invalid_grant`),
never a token; it is remembered for FAILURE_SECONDS, so a dead credential is not hammered.
A provider's 401 to an access token marks that token rejected (`reject`): the next request
refreshes it at once, single-flight as above, however long before its expiry (keyring.py retries
the call once with the new token).

A client-credentials token is single-flight within a replica only: each replica holds its own
token (the grant hands out as many as asked, with no refresh token to rotate or lose), so sharing
one would add a store round trip for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson
import structlog
from switchboard_common.errors import ApiError, InvalidRequest, UpstreamError

from switchboard_router.domain import OAuthSpec, ProviderSpec

_log = structlog.get_logger("oauth")
FAILURE_SECONDS = 5.0  # a failed refresh answers at once for this long, then is tried again
SAVE_RETRY_SECONDS = 1.0  # first wait before storing again a refreshed set the store refused
TOKEN_TIMEOUT_SECONDS = 10.0  # one call to the token endpoint
MAX_TOKEN_SET_CHARS = 12_000  # sealed, within auth's 16 KiB per credential
_REASON_CHARS = 200


class TokenRefreshFailed(UpstreamError):
    """The provider's token endpoint would not refresh a credential's access token: a 503 (the
    gateway's credential, not the client's key), and another deployment is tried."""

    http_status = 503
    error_type = "service_unavailable"
    default_code = "token_refresh_failed"


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a stored OAuth credential holds, sealed: the tokens and when the access token ends."""

    access_token: str = field(repr=False)  # Sensitive
    refresh_token: str | None = field(repr=False)  # Sensitive
    expires_at: float | None  # Unix seconds; None: the provider did not say
    obtained_at: float
    token_type: str = "Bearer"
    scope: str = ""

    def to_json(self) -> str:
        return orjson.dumps({"type": "oauth", "access_token": self.access_token,
                             "refresh_token": self.refresh_token, "expires_at": self.expires_at,
                             "obtained_at": self.obtained_at, "token_type": self.token_type,
                             "scope": self.scope}).decode()

    @classmethod
    def from_answer(cls, answer: dict[str, Any], now: float, previous: TokenSet | None = None) -> TokenSet:
        """A token endpoint's answer (RFC 6749 §5.1); a refresh that returns no new refresh
        token keeps the previous one (§6)."""
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("the answer has no access_token")
        refresh = answer.get("refresh_token") or (previous.refresh_token if previous else None)
        expires_in = answer.get("expires_in")
        # RFC 6749 says seconds as a number; some servers send a string, and Authlib's token
        # (what the CLI sends) adds an absolute expires_at.
        expires_at = now + float(expires_in) if expires_in not in (None, "") else None
        if expires_at is None and isinstance(answer.get("expires_at"), int | float):
            expires_at = float(answer["expires_at"])
        return cls(access_token=access, refresh_token=refresh if isinstance(refresh, str) else None,
                   expires_at=expires_at,
                   obtained_at=now, token_type=str(answer.get("token_type") or "Bearer"),
                   scope=str(answer.get("scope") or ""))

    def hint(self) -> str:
        """Not the token: a short digest of the refresh (or access) token, to tell sets apart."""
        digest = hashlib.sha256((self.refresh_token or self.access_token).encode()).hexdigest()
        return f"oauth:{digest[:8]}"

    def fresh(self, now: float, margin: float) -> bool:
        """Usable for a while yet: before expiry by `margin` (at most half its lifetime, so that
        a short-lived token is not refreshed on every request)."""
        if self.expires_at is None:
            return True
        lifetime = self.expires_at - self.obtained_at
        return now < self.expires_at - min(margin, max(lifetime, 0.0) / 2)


def parse_secret(text: str, now: float | None = None) -> TokenSet:
    """A token set as the admin API takes it (what `switchboard credentials login` sends: the
    token endpoint's answer as JSON); a 400 naming `secret` when it is not one."""
    if len(text) > MAX_TOKEN_SET_CHARS:
        raise InvalidRequest(f"'secret' must be at most {MAX_TOKEN_SET_CHARS} characters.",
                             param="secret", code="invalid_value")
    try:
        answer = orjson.loads(text)
        if not isinstance(answer, dict):
            raise ValueError("not an object")
        if answer.get("type") == "oauth" and "obtained_at" in answer:
            return TokenSet(access_token=answer["access_token"], refresh_token=answer.get("refresh_token"),
                            expires_at=answer.get("expires_at"), obtained_at=float(answer["obtained_at"]),
                            token_type=answer.get("token_type") or "Bearer", scope=answer.get("scope") or "")
        return TokenSet.from_answer(answer, time.time() if now is None else now)
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise InvalidRequest("This provider takes OAuth tokens: 'secret' must be the token "
                             "endpoint's JSON answer (access_token, refresh_token, expires_in), as "
                             "`switchboard credentials login` sends it.", param="secret",
                             code="invalid_value") from None


class Vault(Protocol):
    """Where token sets are kept (stored_credentials: sealed, in auth)."""

    async def load(self, credential_id: str) -> TokenSet | None: ...

    async def save(self, credential_id: str, tokens: TokenSet) -> None: ...


Lease = Callable[[str], Any]  # credential id -> an async context manager held while refreshing


def _client(spec: OAuthSpec) -> Any:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client(client_id=spec.client_id, client_secret=spec.client_secret,
                             scope=" ".join(spec.scopes) or None, timeout=TOKEN_TIMEOUT_SECONDS,
                             token_endpoint_auth_method="client_secret_basic"
                             if spec.client_secret else "none")


class MemoryVault:
    """Where a client-credentials token is kept: this replica's memory (nothing is stored)."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenSet] = {}

    async def load(self, credential_id: str) -> TokenSet | None:
        return self._tokens.get(credential_id)

    async def save(self, credential_id: str, tokens: TokenSet) -> None:
        self._tokens[credential_id] = tokens


@contextlib.asynccontextmanager
async def no_lease(credential_id: str) -> AsyncIterator[None]:
    yield


NO_TOKEN = TokenSet(access_token="", refresh_token=None, expires_at=0.0, obtained_at=0.0)


class OAuthToken:
    """One OAuth credential's tokens, as one replica holds them."""

    def __init__(self, credential_id: str, provider: str, spec: OAuthSpec, tokens: TokenSet,
                 vault: Vault, lease: Lease, clock: Callable[[], float] = time.time) -> None:
        self.credential_id = credential_id
        self.provider = provider
        self._spec = spec
        self._tokens = tokens
        self._vault = vault
        self.lease = lease  # set again when NATS's lease is wired (stored_credentials.use_lease)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._failure: TokenRefreshFailed | None = None
        self._failed_until = 0.0
        self._rejected = ""  # an access token the provider answered 401 to: refreshed first
        self.refreshes = 0  # refreshes this replica made (for tests and logs)
        self._saving: asyncio.Task | None = None  # a refreshed set the store refused, stored again

    @classmethod
    def client_credentials(cls, provider: str, spec: OAuthSpec,
                           clock: Callable[[], float] = time.time) -> OAuthToken:
        """A provider's own token by the client-credentials grant: none until first used."""
        return cls(f"{provider}:client_credentials", provider, spec, NO_TOKEN, MemoryVault(),
                   no_lease, clock)

    def reject(self, access: str) -> None:
        """The provider answered 401 to `access`: unless it was refreshed meanwhile, the next
        access_token() refreshes it, however fresh it looked."""
        if access and access == self._tokens.access_token:
            self._rejected = access

    def _usable(self) -> bool:
        return self._tokens.access_token != self._rejected and \
            self._tokens.fresh(self._clock(), self._spec.refresh_before_seconds)

    def adopt(self, tokens: TokenSet) -> None:
        """A set read from the store (a reload): taken when it is newer than the one held."""
        if tokens.obtained_at >= self._tokens.obtained_at and tokens != self._tokens:
            self._tokens = tokens
            self._failure = None

    async def access_token(self) -> str:
        if self._usable():
            return self._tokens.access_token
        if self._failure is not None and self._clock() < self._failed_until:
            raise copy.copy(self._failure)  # a new one each time: one shared would grow its traceback
        async with self._lock:
            if not self._usable():
                await self._refresh_shared()
        return self._tokens.access_token

    async def _refresh_shared(self) -> None:
        async with self.lease(self.credential_id):
            stored = await self._vault.load(self.credential_id)
            if stored is not None:
                self.adopt(stored)  # another replica may have refreshed it while we waited
            if self._usable():
                return
            try:
                fresh = await self._refresh(self._tokens)
            except TokenRefreshFailed as exc:
                if await self._rotated_meanwhile():
                    return
                self._failure, self._failed_until = exc, self._clock() + FAILURE_SECONDS
                raise
            # Stored before it is used: the old refresh token may be revoked already. If the store
            # is away, the set is used anyway (it is the only valid one left) and stored later.
            try:
                await self._vault.save(self.credential_id, fresh)
            except ApiError as exc:
                _log.warning("refreshed OAuth token not stored; kept, and stored again later",
                             credential_id=self.credential_id, error=exc.code)
                self._saving = asyncio.get_running_loop().create_task(self._save_later(fresh))
            self._tokens, self._failure = fresh, None
            self.refreshes += 1
            _log.info("oauth token refreshed", credential_id=self.credential_id,
                      provider=self.provider, hint=fresh.hint(),
                      expires_in=None if fresh.expires_at is None
                      else round(fresh.expires_at - fresh.obtained_at))

    async def _save_later(self, tokens: TokenSet) -> None:
        """Store a refreshed set the store refused, with a growing wait, until it is stored or a
        newer set replaced it."""
        wait = SAVE_RETRY_SECONDS
        while self._tokens is tokens or self._tokens == tokens:
            await asyncio.sleep(wait)
            try:
                await self._vault.save(self.credential_id, tokens)
            except ApiError:
                wait = min(wait * 2, 60.0)
                continue
            _log.info("refreshed OAuth token stored", credential_id=self.credential_id)
            return

    async def _rotated_meanwhile(self) -> bool:
        """After a refused refresh: whether another replica stored a new set while this one
        refreshed (possible only without the lease, while NATS is away); then it is used."""
        stored = await self._vault.load(self.credential_id)
        if stored is None or stored.refresh_token == self._tokens.refresh_token:
            return False
        self.adopt(stored)
        return self._usable()

    async def _refresh(self, tokens: TokenSet) -> TokenSet:
        from authlib.integrations.base_client import OAuthError
        from httpx2 import HTTPError

        client_credentials = self._spec.grant == "client_credentials"
        if not client_credentials and not tokens.refresh_token:
            raise self._failed("the credential has no refresh token")
        try:
            async with _client(self._spec) as client:
                if client_credentials:
                    answer = await client.fetch_token(self._spec.token_url,
                                                      grant_type="client_credentials")
                else:
                    answer = await client.refresh_token(self._spec.token_url,
                                                        refresh_token=tokens.refresh_token)
            return TokenSet.from_answer(dict(answer), self._clock(), tokens)
        except OAuthError as exc:
            raise self._failed(str(exc.error), exc.description, tokens) from None
        except HTTPError as exc:
            raise self._failed("token endpoint unreachable or failing", type(exc).__name__) from None
        except ValueError:
            raise self._failed("the token endpoint's answer is not a token") from None

    def _failed(self, reason: str, detail: str | None = None, tokens: TokenSet | None = None
                ) -> TokenRefreshFailed:
        text = f"{reason} ({detail})" if detail else reason
        for secret in (tokens.access_token, tokens.refresh_token) if tokens else ():
            if secret:
                text = text.replace(secret, "[REDACTED]")  # an answer that quotes the token
        text = text[:_REASON_CHARS]
        _log.warning("oauth token refresh failed", credential_id=self.credential_id,
                     provider=self.provider, reason=text)
        if self._spec.grant == "client_credentials":
            return TokenRefreshFailed(
                f"The gateway could not get an OAuth token for provider '{self.provider}' by the "
                f"client-credentials grant: {text}. Check its oauth client_id, client_secret "
                "and scopes.")
        return TokenRefreshFailed(
            f"The gateway could not refresh the OAuth token of provider '{self.provider}' "
            f"(credential {self.credential_id}): {text}. Log in again with `switchboard "
            f"credentials login {self.provider}`.")


class OAuthCodec:
    """A provider's codec for one OAuth credential: before each request (`authorize`) it gets a
    current access token and, when it changed, builds the provider's codec with it as the key."""

    def __init__(self, make: Callable[[ProviderSpec], Any], spec: ProviderSpec, token: OAuthToken) -> None:
        self._make, self._spec, self.token = make, spec, token
        self._built_for = ""
        self._inner: Any = make(replace(spec, api_key="-"))
        self.endpoints = self._inner.endpoints

    async def authorize(self) -> None:
        access = await self.token.access_token()
        if access != self._built_for:
            # Sent as an OAuth token is (Bearer), whatever header the format's keys go in.
            self._inner = self._make(replace(self._spec, api_key=access, credential="oauth"))
            self._built_for = access

    def token_rejected(self) -> None:
        """The provider answered 401 to the token this codec sent (keyring.py then retries the
        call once, and this makes that retry carry a refreshed token)."""
        self.token.reject(self._built_for)

    def request(self, call: Any) -> Any:
        return self._inner.request(call)

    def response(self, call: Any, body: bytes) -> Any:
        return self._inner.response(call, body)

    def relay(self, call: Any, count: Callable[[str], int]) -> Any:
        return self._inner.relay(call, count)

    def error(self, status: int, body: bytes, retry_after: str | None) -> Any:
        return self._inner.error(status, body, retry_after)


async def revoke(spec: OAuthSpec, tokens: TokenSet, provider: str, credential_id: str) -> bool:
    """RFC 7009: the refresh token (which ends its access tokens too) revoked at the provider's
    revocation endpoint, when it has one; a failure is logged, not raised (the credential is
    removed from the gateway either way)."""
    from httpx2 import HTTPError

    if spec.revocation_url is None:
        return False
    token, hint = (tokens.refresh_token, "refresh_token") if tokens.refresh_token else \
        (tokens.access_token, "access_token")
    try:
        async with _client(spec) as client:
            resp = await client.revoke_token(spec.revocation_url, token=token, token_type_hint=hint)
        ok = resp.status_code == 200
    except HTTPError as exc:
        _log.warning("oauth revocation failed", credential_id=credential_id, provider=provider,
                     reason=type(exc).__name__)
        return False
    (_log.info if ok else _log.warning)("oauth token revoked at the provider" if ok else
                                        "oauth revocation refused", credential_id=credential_id,
                                        provider=provider, status=resp.status_code)
    return ok

