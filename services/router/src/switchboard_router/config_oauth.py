"""switchboard.yaml's `oauth:` section of a provider (or of a deployment): the user's own OAuth
client, whose tokens come from a device-code login (`switchboard credentials login`) and are
refreshed by the router, or (`grant: client_credentials`) are fetched by the router itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchboard_router.domain import OAuthSpec

_URL = r"^https?://\S+$"
# Fields only the device-code grant reads: refused beside client_credentials, where nothing would.
_DEVICE_ONLY = ("device_authorization_url", "pkce")


class OAuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grant: Literal["device_code", "client_credentials"] = "device_code"
    client_id: str = Field(min_length=1)
    client_secret: str | None = None  # empty (an unset `${VAR:-}`): a public client
    token_url: str = Field(pattern=_URL)
    scopes: list[str] = Field(default_factory=list, max_length=32)
    device_authorization_url: str | None = Field(None, pattern=_URL)
    revocation_url: str | None = Field(None, pattern=_URL)
    pkce: bool = False
    refresh_before_seconds: float = Field(60.0, ge=0, le=3600)


def spec(at: str, o: OAuthConfig | None, kind: str, p: Any, takes_bearer: bool,
         problems: list[tuple[str, str]]) -> OAuthSpec | None:
    """The provider's OAuth client, for the formats that can carry an OAuth access token as a
    Bearer token (`takes_bearer`, the adapter's; `p` is the provider's ProviderConfig). Its keys
    may go in another header (Anthropic's x-api-key, Azure's api-key, Gemini's
    x-goog-api-key): the codec sends each credential as its kind is sent."""
    if o is None:
        return None
    if not takes_bearer:
        problems.append((f"{at}.oauth", f"provider type {kind!r} has its own credentials (not an "
                                        "OAuth Bearer token): oauth is for openai, azure, "
                                        "anthropic and gemini"))
        return None
    if p.api_key is not None or p.api_keys is not None:
        problems.append((f"{at}.oauth", "give either api_key/api_keys or oauth, not both"))
        return None
    if o.grant == "client_credentials":
        if not o.client_secret:
            problems.append((f"{at}.oauth.client_secret", "required for grant client_credentials "
                                                          "(RFC 6749 §4.4: a confidential client)"))
            return None
        for name in _DEVICE_ONLY:
            if name in o.model_fields_set:
                problems.append((f"{at}.oauth.{name}", "only for grant device_code (a "
                                                       "client_credentials token needs no login)"))
                return None
    return OAuthSpec(client_id=o.client_id, client_secret=o.client_secret or None,
                     token_url=o.token_url, grant=o.grant, scopes=tuple(o.scopes),
                     device_authorization_url=o.device_authorization_url,
                     revocation_url=o.revocation_url, pkce=o.pkce,
                     refresh_before_seconds=o.refresh_before_seconds)
