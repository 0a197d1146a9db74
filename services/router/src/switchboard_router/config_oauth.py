"""switchboard.yaml's `oauth:` section of a provider: the user's own OAuth client, whose tokens
come from a device-code login (`switchboard credentials login`) and are refreshed by the router."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from switchboard_router.domain import OAuthSpec

_URL = r"^https?://\S+$"


class OAuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: str | None = None  # empty (an unset `${VAR:-}`): a public client
    token_url: str = Field(pattern=_URL)
    scopes: list[str] = Field(default_factory=list, max_length=32)
    device_authorization_url: str | None = Field(None, pattern=_URL)
    revocation_url: str | None = Field(None, pattern=_URL)
    pkce: bool = False
    refresh_before_seconds: float = Field(60.0, ge=0, le=3600)


def spec(at: str, o: OAuthConfig | None, kind: str, p: Any,
         problems: list[tuple[str, str]]) -> OAuthSpec | None:
    """The provider's OAuth client, for the formats that send their credential as a Bearer token
    (`p` is the provider's ProviderConfig)."""
    if o is None:
        return None
    if kind != "openai" or (p.auth_header or "authorization") != "authorization":
        problems.append((f"{at}.oauth", "only for a provider of type openai that sends its key "
                                        "as a Bearer token"))
        return None
    if p.api_key is not None or p.api_keys is not None:
        problems.append((f"{at}.oauth", "give either api_key/api_keys or oauth, not both"))
        return None
    return OAuthSpec(client_id=o.client_id, client_secret=o.client_secret or None,
                     token_url=o.token_url, scopes=tuple(o.scopes),
                     device_authorization_url=o.device_authorization_url,
                     revocation_url=o.revocation_url, pkce=o.pkce,
                     refresh_before_seconds=o.refresh_before_seconds)
