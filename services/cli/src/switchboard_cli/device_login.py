"""The OAuth device authorization grant (RFC 8628) for `switchboard credentials login`, with a
PKCE S256 challenge (RFC 7636) where the provider's `oauth:` says `pkce: true`.

The client is the user's own OAuth client, as the provider's `oauth:` section of switchboard.yaml
declares it (the same file and `${VAR}`s the router reads). Authlib's OAuth2Client makes the token
requests and reads their errors; this module adds the polling RFC 8628 §3.4-3.5 asks for: wait
`interval` seconds between polls, keep polling on `authorization_pending`, add 5 seconds to the
interval on `slow_down` (a 400 in the RFC, a 429 at some servers: both read the same), stop on
`access_denied` and `expired_token` (or once `expires_in` has passed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SLOW_DOWN_SECONDS = 5  # RFC 8628 §3.5
DEFAULT_INTERVAL = 5  # §3.2: when the server names none
TIMEOUT_SECONDS = 30.0
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class LoginFailed(Exception):
    """The login ended without tokens; the message says why (never a token)."""


@dataclass(frozen=True)
class OAuthClient:
    """A provider's `oauth:` section, expanded."""

    provider: str
    client_id: str
    client_secret: str | None = field(repr=False)
    token_url: str
    device_authorization_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = False


@dataclass(frozen=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


def _expand(value: Any, env: Mapping[str, str], at: str) -> Any:
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise LoginFailed(f"{at}: the environment variable {name} is not set")
    return _VAR.sub(one, value)


def read_client(path: Path, provider: str, env: Mapping[str, str]) -> OAuthClient:
    """The provider's OAuth client from switchboard.yaml; LoginFailed naming what is missing."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LoginFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise LoginFailed(f"{path} is not valid YAML: {exc}") from None
    section, at = _section(raw, provider, path)
    if not isinstance(section, dict):
        raise LoginFailed(f"provider '{provider}' has no `oauth:` section in {path}: a device login "
                          "needs the provider's OAuth client (see the README, OAuth credentials)")
    o = {k: _expand(v, env, f"{at}.{k}") for k, v in section.items()}
    if o.get("grant") == "client_credentials":
        raise LoginFailed(f"provider '{provider}' gets its OAuth token by the client-credentials "
                          "grant: the router fetches it itself, no login is needed")
    for required in ("client_id", "token_url", "device_authorization_url"):
        if not o.get(required):
            raise LoginFailed(f"{at}.{required} is required for a device login")
    scopes = o.get("scopes") or []
    return OAuthClient(provider=provider, client_id=o["client_id"], client_secret=o.get("client_secret") or None,
                       token_url=o["token_url"], device_authorization_url=o["device_authorization_url"],
                       scopes=tuple(_expand(s, env, f"{at}.scopes") for s in scopes),
                       pkce=bool(o.get("pkce", False)))


def _section(raw: Any, provider: str, path: Path) -> tuple[Any, str]:
    """The `oauth:` section of a provider, or of a deployment with credentials of its own
    (`<provider>@<deployment name>`, as the router names it), and where it is in the file."""
    providers = raw.get("providers") if isinstance(raw, dict) else None
    base, _, deployment = provider.partition("@")
    if not isinstance(providers, dict) or base not in providers:
        known = ", ".join(sorted(providers)) if isinstance(providers, dict) else "none"
        raise LoginFailed(f"{path} has no provider '{base}' (providers: {known})")
    if not deployment:
        return (providers[base] or {}).get("oauth"), f"providers.{base}.oauth"
    for i, model in enumerate(raw.get("models") or []):
        for j, dep in enumerate((model or {}).get("deployments") or []):
            if isinstance(dep, dict) and dep.get("provider") == base and dep.get("name") == deployment:
                return dep.get("oauth"), f"models[{i}].deployments[{j}].oauth"
    raise LoginFailed(f"{path} has no deployment named '{deployment}' of provider '{base}'")


def _http(client: OAuthClient) -> Any:
    from authlib.integrations.httpx_client import OAuth2Client

    return OAuth2Client(client_id=client.client_id, client_secret=client.client_secret,
                        scope=" ".join(client.scopes) or None, timeout=TIMEOUT_SECONDS,
                        token_endpoint_auth_method="client_secret_basic" if client.client_secret else "none")


def pkce_pair() -> tuple[str, str]:
    """A code verifier (RFC 7636 §4.1: 43 to 128 characters) and its S256 challenge."""
    from authlib.common.security import generate_token
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier = generate_token(64)
    return verifier, create_s256_code_challenge(verifier)


def start(client: OAuthClient, http: Any, challenge: str | None) -> DeviceCode:
    """The device authorization request (§3.1): the codes to show the user."""
    form = {"client_id": client.client_id}
    if client.scopes:
        form["scope"] = " ".join(client.scopes)
    if challenge is not None:
        form |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    auth = (client.client_id, client.client_secret) if client.client_secret else None
    # An explicit auth (None: none) also tells Authlib this request carries no access token.
    resp = http.post(client.device_authorization_url, data=form, auth=auth)
    try:
        answer = resp.json()
    except ValueError:
        raise LoginFailed(f"the device authorization endpoint answered HTTP {resp.status_code} "
                          "without JSON") from None
    if resp.status_code != 200 or "device_code" not in answer:
        reason = answer.get("error", f"HTTP {resp.status_code}") if isinstance(answer, dict) else resp.status_code
        raise LoginFailed(f"the device authorization request was refused: {reason}")
    return DeviceCode(device_code=answer["device_code"], user_code=answer["user_code"],
                      verification_uri=answer.get("verification_uri") or answer.get("verification_url", ""),
                      verification_uri_complete=answer.get("verification_uri_complete"),
                      expires_in=float(answer.get("expires_in", 600)),
                      interval=float(answer.get("interval", DEFAULT_INTERVAL)))


def poll(client: OAuthClient, http: Any, device: DeviceCode, verifier: str | None, *,
         scale: float = 1.0, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll the token endpoint (§3.4) until the user approves; the token answer. `scale` shrinks
    every wait (tests)."""
    from authlib.integrations.base_client import OAuthError
    from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE

    interval, deadline = device.interval, clock() + device.expires_in * scale
    extra = {"code_verifier": verifier} if verifier is not None else {}
    while True:
        sleep(interval * scale)
        if clock() > deadline:
            raise LoginFailed("the code expired before it was approved (expired_token): run the "
                              "login again")
        try:
            return dict(http.fetch_token(client.token_url, grant_type=DEVICE_CODE_GRANT_TYPE,
                                         device_code=device.device_code, **extra))
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += SLOW_DOWN_SECONDS
                continue
            if exc.error == "access_denied":
                raise LoginFailed("the login was denied at the provider (access_denied)") from None
            if exc.error == "expired_token":
                raise LoginFailed("the code expired before it was approved (expired_token): run "
                                  "the login again") from None
            raise LoginFailed(f"the provider refused the login: {exc.error}"
                              + (f" ({exc.description})" if exc.description else "")) from None
        except ValueError:
            raise LoginFailed("the token endpoint answered without JSON") from None


def login(client: OAuthClient, show: Callable[[DeviceCode], None], *, scale: float = 1.0) -> dict[str, Any]:
    """The whole flow: the codes shown with `show`, then the token endpoint's answer."""
    from httpx2 import HTTPError

    verifier, challenge = pkce_pair() if client.pkce else (None, None)
    try:
        with _http(client) as http:
            device = start(client, http, challenge)
            show(device)
            return poll(client, http, device, verifier, scale=scale)
    except HTTPError as exc:
        raise LoginFailed(f"cannot reach the provider's OAuth server: {type(exc).__name__}") from None
