"""Google Cloud credentials for Vertex AI, made by google-auth from what the operator gives.

The provider's api_key (GOOGLE_APPLICATION_CREDENTIALS, or GOOGLE_OAUTH_ACCESS_TOKEN) is either
- a credentials file, its `type` naming which of google-auth's credential classes reads it:
  `service_account` (a key: google-auth signs the JWT-bearer grant), `authorized_user` (the
  application-default credentials `gcloud auth application-default login` writes: a refresh
  token), or `external_account` (workload identity federation: google-auth trades the subject
  token, from a file, a URL, AWS or an executable as the file says, at Google's STS); or
- an OAuth access token itself (`ya29.…`, as `gcloud auth print-access-token` prints it),
  used as it is until Vertex refuses it: it cannot be refreshed.
A credentials file may name its own token endpoint (`token_uri`, `token_url`), which is how tests
point google-auth at a fake. Tokens are fetched off the event loop (google-auth's transport
blocks), one fetch at a time, and kept until google-auth deems them near expiry; a fetch that
fails is a 502 naming the credential kind, never the token endpoint's answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from switchboard_common.errors import UpstreamError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_TIMEOUT_SECONDS = 10.0  # one token request (google-auth's own default is 120 s)
ACCESS_TOKEN_PREFIX = "ya29."  # Google's OAuth 2.0 access tokens
KINDS = {"service_account": "service account", "authorized_user": "authorized user (application-"
         "default credentials)", "external_account": "external account (workload identity)",
         "access_token": "access token"}


class Unusable(ValueError):
    """The credentials cannot be used (the reason names the file, never its content)."""


class GoogleToken:
    """An access token from google-auth credentials, fetched when missing or near expiry, one
    fetch at a time."""

    def __init__(self, credentials: Any, kind: str, request_factory: Callable[[], Any]) -> None:
        self._credentials = credentials  # a google.auth.credentials.Credentials
        self.kind = kind
        self._request_factory = request_factory
        self._lock = asyncio.Lock()

    @property
    def token(self) -> str | None:
        return self._credentials.token if self._credentials.valid else None

    async def refresh_if_needed(self) -> None:
        if self._credentials.valid:  # google-auth: a token, not within its refresh threshold of expiry
            return
        async with self._lock:
            if self._credentials.valid:  # another request fetched it while this one waited
                return
            from google.auth import exceptions

            try:
                await asyncio.to_thread(self._credentials.refresh, self._request_factory())
            except (exceptions.GoogleAuthError, ValueError, OSError):
                # google-auth's message may quote the token endpoint's answer: not for clients.
                raise UpstreamError(f"The gateway could not get an access token for Vertex AI from its "
                                    f"{KINDS[self.kind]} credentials; the gateway's operator must check "
                                    "them.", code="provider_auth_error") from None


def load(value: str) -> tuple[Any, str, str | None]:
    """(credentials, kind, the project they name or None) for the api_key's value; Unusable."""
    if value.startswith(ACCESS_TOKEN_PREFIX):
        from google.oauth2 import credentials as user_credentials

        return user_credentials.Credentials(token=value), "access_token", None
    try:
        with open(value, encoding="utf-8") as file:
            info = json.load(file)
    except OSError as exc:
        raise Unusable(f"cannot read {value!r}: {exc.strerror or exc}") from None
    except ValueError:
        raise Unusable(f"{value!r} is not JSON") from None
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_info(info, scopes=SCOPES), kind, \
                info.get("project_id")
        if kind == "authorized_user":
            from google.oauth2 import credentials as user_credentials

            user = user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
            if info.get("token_uri"):
                user = user.with_token_uri(info["token_uri"])  # google-auth otherwise sets Google's
            return user, kind, info.get("quota_project_id")
        if kind == "external_account":
            return _external_account(info), kind, info.get("quota_project_id")
    except (ValueError, KeyError, TypeError) as exc:
        raise Unusable(f"{value!r} is not usable {KINDS[str(kind)]} credentials: {_reason(exc)}") from None
    raise Unusable(f"{value!r} is not a credentials file google-auth reads here (type service_account, "
                   "authorized_user or external_account), nor an access token (ya29.…)")


def _external_account(info: dict[str, Any]) -> Any:
    """The external-account class google-auth's own loader picks for this configuration (its
    generic loader would also look the project up over the network at start)."""
    source = info.get("credential_source") or {}
    if info.get("subject_token_type") == "urn:ietf:params:aws:token-type:aws4_request":
        from google.auth import aws

        return aws.Credentials.from_info(info, scopes=SCOPES)
    if isinstance(source, dict) and source.get("executable") is not None:
        from google.auth import pluggable

        return pluggable.Credentials.from_info(info, scopes=SCOPES)
    from google.auth import identity_pool

    return identity_pool.Credentials.from_info(info, scopes=SCOPES)


def _reason(exc: Exception) -> str:
    # google-auth's ValueErrors name missing fields; a KeyError names the field itself.
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc).split("\n")[0][:200]


def token_request() -> Any:
    """google-auth's requests transport, each call bounded by TOKEN_TIMEOUT_SECONDS."""
    from google.auth.transport.requests import Request

    class BoundedRequest(Request):
        def __call__(self, url, method="GET", body=None, headers=None, timeout=TOKEN_TIMEOUT_SECONDS, **kwargs):
            return super().__call__(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)

    return BoundedRequest()
