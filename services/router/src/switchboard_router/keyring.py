"""Several API keys for one provider (`api_keys:` in switchboard.yaml): which key each attempt uses,
and what a refusal from the provider does to that key.

Within one request the provider is tried with each usable key at most once: a 429 cools the key
for its Retry-After (or `DEFAULT_COOLDOWN_SECONDS`), a 401/403 marks it invalid until the key is
replaced, and the request moves to the next key with no error the client can see. An OAuth key's
401 is different: its access token may have been revoked or rolled over before its expiry, so the
token is refreshed (single-flight, oauth.py) and the call retried once with the same key; a second
401 on the refreshed token marks the key invalid and the request moves on. When no key is
usable the answer is at once a 503 `all_keys_exhausted` naming the provider, never a key. Rotation
across deployments is routing's business (gateway.py); this is rotation within one provider.

The first key of a request is picked by the provider's `key_selection`: `round_robin` (smooth
weighted round robin, nginx's: weight 3 gets three picks in four against weight 1, interleaved) or
`least_recently_throttled` (the key whose last 429 is oldest, round robin among equals). A key
with its own `rpm` is skipped while it has used its requests of the last minute (token bucket).
Selection walks the keys once: a few comparisons per request, nothing measurable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

from switchboard_common.errors import UpstreamError

from switchboard_router.domain import ProviderSpec
from switchboard_router.oauth import OAuthCodec, OAuthToken

DEFAULT_COOLDOWN_SECONDS = 30.0  # a 429 without Retry-After
MAX_COOLDOWN_SECONDS = 86_400.0  # a Retry-After beyond a day is read as a day
THROTTLED = frozenset({429})
REJECTED = frozenset({401, 403})
UNAUTHORIZED = 401  # to an OAuth key: its token is refreshed and the call retried once
STRATEGIES = ("round_robin", "least_recently_throttled")

C = TypeVar("C")  # what a key is used through: the provider's codec built with that key


class AllKeysExhausted(UpstreamError):
    """Every key of a provider is cooling down or was rejected: a 503 the client may retry after
    the Retry-After it carries (when a key is only cooling). An UpstreamError, so another
    deployment, if the model has one, is tried."""

    http_status = 503
    error_type = "service_unavailable"
    default_code = "all_keys_exhausted"


def hint(secret: str) -> str:
    """A key as logs, stats and admin answers may show it: its first three and last four
    characters (`sk-…a1b2`), or only the last two of a short one."""
    if len(secret) >= 16:
        return f"{secret[:3]}…{secret[-4:]}"
    return f"…{secret[-2:]}" if len(secret) >= 8 else "…"


@dataclass(frozen=True, slots=True)
class KeyHealth:
    """One key as /api/routing/stats shows it: no secret, only its hint."""

    provider: str
    hint: str
    state: str  # "ready", "cooling" (after a 429), "rate_limited" (its own rpm), "invalid" (401/403)
    ready_in_seconds: float  # until a cooling or rate-limited key is usable again; 0 otherwise
    weight: int
    rpm: int  # 0: no limit of its own
    requests: int  # attempts made with it
    throttled: int  # 429s it got
    rejected: int  # 401/403s it got


class Key(Generic[C]):
    """One key's state. `secret` is sensitive: it never leaves this object but through `codec`."""

    __slots__ = ("ident", "secret", "hint", "codec", "weight", "rpm", "invalid", "cooling_until",
                 "last_throttled", "current", "requests", "throttled", "rejected", "_tokens",
                 "_filled_at", "retries_due")

    def __init__(self, secret: str, codec: C, *, weight: int = 1, rpm: int | None = None,
                 now: float = 0.0, ident: str = "", shown: str = "") -> None:
        self.ident = ident  # "config-<i>", or the stored credential's id
        self.secret = secret
        self.hint = shown or hint(secret)
        self.codec = codec
        self.weight = weight
        self.rpm = rpm
        self.invalid = False
        self.cooling_until = 0.0
        self.last_throttled = -math.inf
        self.current = 0  # smooth weighted round robin's running score
        self.requests = self.throttled = self.rejected = 0
        self._tokens = float(rpm or 0)
        self._filled_at = now
        # 401s to its OAuth token, each owing its call one retry with a refreshed token.
        self.retries_due = 0

    @property
    def refreshable(self) -> bool:
        """An OAuth key: a 401 can be cured by refreshing its token."""
        return callable(getattr(self.codec, "token_rejected", None))

    def ready_at(self, now: float) -> float:
        """When it can be used: `now` or earlier when usable, inf when invalid."""
        if self.invalid:
            return math.inf
        at = self.cooling_until
        if self.rpm:
            self._refill(now)
            if self._tokens < 1.0:
                at = max(at, now + (1.0 - self._tokens) * 60.0 / self.rpm)
        return at

    def take(self) -> None:
        """One attempt is made with it (its rpm bucket already refilled by ready_at)."""
        self.requests += 1
        if self.rpm:
            self._tokens -= 1.0

    def _refill(self, now: float) -> None:
        assert self.rpm
        self._tokens = min(float(self.rpm), self._tokens + (now - self._filled_at) * self.rpm / 60.0)
        self._filled_at = now


class KeyRing(Generic[C]):
    def __init__(self, provider: str, keys: Sequence[Key[C]], *, strategy: str = "round_robin",
                 clock: Callable[[], float] = time.monotonic) -> None:
        assert strategy in STRATEGIES, strategy
        self.provider = provider
        self.strategy = strategy
        self._keys = list(keys)
        self._clock = clock

    @property
    def keys(self) -> Sequence[Key[C]]:
        return self._keys

    def attempts(self) -> Iterator[Key[C]]:
        """The keys one request tries, each at most once, usable at the moment it is tried; the
        caller reports each refusal with `refused` before asking for the next. Raises
        AllKeysExhausted when none is left."""
        tried: set[Key[C]] = set()
        retried: set[Key[C]] = set()
        while True:
            key = self._pick(tried)
            if key is None:
                raise self._exhausted()
            tried.add(key)
            key.take()
            yield key
            # Resumed: `key` was refused. A 401 to its OAuth token is owed one retry with a
            # refreshed token (`refused` marked the token); a 401 on that retry ends the key.
            # (`refused` and this resumption run with no await between, so the retry owed is
            # this call's own.)
            while key.retries_due and not key.invalid:
                key.retries_due -= 1
                if key in retried:
                    key.invalid = True
                    break
                retried.add(key)
                now = self._clock()
                if key.ready_at(now) > now:
                    break  # its own rpm is used up: the next key
                key.take()
                yield key

    def refused(self, key: Key[C], status: int, retry_after: str | None) -> bool:
        """The provider answered `status` to `key`: True when that is about the key (try the next
        one), False when it is about the request (the caller reports it as it is)."""
        now = self._clock()
        if status in THROTTLED:
            key.throttled += 1
            key.last_throttled = now
            key.cooling_until = now + _cooldown(retry_after)
            return True
        if status == UNAUTHORIZED and key.refreshable and not key.invalid:
            key.rejected += 1
            key.codec.token_rejected()  # type: ignore[attr-defined]
            key.retries_due += 1
            return True
        if status in REJECTED:
            key.rejected += 1
            key.invalid = True
            return True
        return False

    def health(self) -> list[KeyHealth]:
        now = self._clock()
        out = []
        for key in self._keys:
            at = key.ready_at(now)
            if key.invalid:
                state = "invalid"
            elif at > now:
                state = "cooling" if key.cooling_until > now else "rate_limited"
            else:
                state = "ready"
            out.append(KeyHealth(
                provider=self.provider, hint=key.hint, state=state,
                ready_in_seconds=0.0 if key.invalid or at <= now else round(at - now, 3),
                weight=key.weight, rpm=key.rpm or 0, requests=key.requests,
                throttled=key.throttled, rejected=key.rejected))
        return out

    def _pick(self, tried: set[Key[C]]) -> Key[C] | None:
        """Smooth weighted round robin over the usable keys not tried yet (with
        least_recently_throttled: over those of them whose last 429 is oldest). One pass over
        the keys, two with least_recently_throttled: a few microseconds for a handful of keys."""
        now = self._clock()
        oldest = math.inf  # least_recently_throttled: only the keys whose last 429 is oldest
        if self.strategy == "least_recently_throttled":
            oldest = min((k.last_throttled for k in self._keys
                          if k not in tried and k.ready_at(now) <= now), default=math.inf)
        best: Key[C] | None = None
        total = 0
        for k in self._keys:
            if k in tried or k.last_throttled > oldest or k.ready_at(now) > now:
                continue
            k.current += k.weight
            total += k.weight
            if best is None or k.current > best.current:
                best = k
        if best is not None:
            best.current -= total
        return best

    def _exhausted(self) -> AllKeysExhausted:
        if not self._keys:
            return AllKeysExhausted(f"Provider '{self.provider}' has no API key: its keys come "
                                    "from /api/credentials (or `switchboard credentials login`), "
                                    "and none is stored.")
        now = self._clock()
        cooling = [k.ready_at(now) for k in self._keys if not k.invalid]
        invalid = sum(k.invalid for k in self._keys)
        parts = []
        if cooling:
            parts.append(f"{len(cooling)} rate limited or cooling down")
        if invalid:
            parts.append(f"{invalid} rejected by the provider (401/403) until replaced")
        soonest = min(cooling, default=math.inf)
        retry = max(1, math.ceil(soonest - now)) if soonest != math.inf else None
        return AllKeysExhausted(
            f"No API key of provider '{self.provider}' is usable right now: "
            f"{', '.join(parts)}." + (f" Retry in {retry} s." if retry else ""),
            retry_after=retry)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key added through /api/credentials, opened."""

    ident: str  # its credential id
    secret: str = field(repr=False)  # Sensitive
    weight: int = 1
    rpm: int | None = None
    # An OAuth credential: its hint as stored, and what builds its codec from the provider's
    # codec factory (one that gets a current access token before each request). Its `secret`
    # is then a stable name, so the key keeps its state while its tokens are refreshed.
    hint: str = ""
    wrap: Callable[[Callable[[ProviderSpec], Any], ProviderSpec], Any] | None = field(
        default=None, repr=False, compare=False)


def build(spec: ProviderSpec, codec: Callable[[ProviderSpec], C], stored: Sequence[StoredKey] = (),
          previous: KeyRing[C] | None = None) -> KeyRing[C] | None:
    """The ring of a provider's keys: its api_keys (or its one api_key, once it has stored keys
    too) and its stored ones, each with the provider's codec built for it (so the codec computes
    its auth header as it does for a single key). A key that `previous` holds with the same id
    and secret keeps its state (a cooling or invalid key stays so); a rotated one starts afresh.
    None for a provider with one key of its own and none stored: it stays as it was."""
    if spec.oauth is not None and spec.oauth.grant == "client_credentials":
        own = [_client_credentials_key(spec)]
    elif spec.api_keys is not None:
        own = [StoredKey(f"config-{i}", k.secret, k.weight, k.rpm) for i, k in enumerate(spec.api_keys)]
    elif stored and spec.api_key:
        own = [StoredKey("config-0", spec.api_key)]
    else:
        own = []
    if spec.api_keys is None and not stored:
        return None
    kept = {(k.ident, k.secret): k for k in previous.keys} if previous is not None else {}
    keys = []
    for entry in (*own, *stored):
        key = kept.get((entry.ident, entry.secret))
        if key is None or (key.weight, key.rpm) != (entry.weight, entry.rpm):
            built = entry.wrap(codec, spec) if entry.wrap is not None else \
                codec(replace(spec, api_key=entry.secret))
            key = Key(entry.secret, built, weight=entry.weight, rpm=entry.rpm,
                      now=time.monotonic(), ident=entry.ident, shown=entry.hint)
        keys.append(key)
    return KeyRing(spec.name, keys, strategy=spec.key_selection)


def _client_credentials_key(spec: ProviderSpec) -> StoredKey:
    """The one key of a provider whose OAuth token the router gets by the client-credentials
    grant (no login, nothing stored): its token holder is made once, with its codec, and kept
    across rebuilds as any key is."""
    assert spec.oauth is not None
    oauth = spec.oauth
    return StoredKey("oauth-client-credentials", "oauth:client_credentials",
                     hint="oauth:client_credentials", wrap=lambda make, s: OAuthCodec(
                         make, s, OAuthToken.client_credentials(s.name, oauth)))


def _cooldown(retry_after: str | None) -> float:
    """Seconds to cool a throttled key: its Retry-After (seconds or an HTTP date), within a day."""
    if not retry_after:
        return DEFAULT_COOLDOWN_SECONDS
    try:
        seconds = float(retry_after)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(retry_after).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return DEFAULT_COOLDOWN_SECONDS
    if not math.isfinite(seconds):
        return DEFAULT_COOLDOWN_SECONDS
    return min(max(seconds, 0.0), MAX_COOLDOWN_SECONDS)
