"""Google's OAuth 2.0 token endpoints as a fake serves them, for the credential kinds google-auth
makes: `POST /token` takes the service-account JWT-bearer grant (RFC 7523: the assertion's RS256
signature checked with the account's public key) and the authorized-user refresh-token grant
(RFC 6749 §6: client id, secret and refresh token checked); `POST /sts` is Google's Security Token
Service for workload identity federation (RFC 8693 token exchange: the subject token checked).
Each answers as Google does, and a refused grant gets OAuth's error object with a 400."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs

from aiohttp import web
from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = frozenset({"urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"})
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
LIFETIME = 3599


class GoogleTokens:
    """The tokens this fake issued, and the grants it takes."""

    def __init__(self, public_key: bytes | None = None) -> None:
        self.public_key = public_key  # the service account's (JWT-bearer)
        # client_id -> (client_secret, refresh_token) of authorized users
        self.users: dict[str, tuple[str, str]] = {}
        self.subject_tokens: set[str] = set()  # what the STS takes as workload identities
        self.issued = 0
        self._expiry: dict[str, float] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self._token)
        app.router.add_post("/sts", self._sts)

    def valid(self, token: str) -> bool:
        return self._expiry.get(token, 0) >= time.time()

    def _issue(self) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        self._expiry[token] = time.time() + LIFETIME
        self.issued += 1
        return token

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        grant = form.get("grant_type")
        if grant == JWT_BEARER and self.public_key is not None:
            try:  # the RS256 signature, checked with the service account's public key
                claims = google_jwt.decode(form.get("assertion", ""), certs=self.public_key, verify=True)
            except (ValueError, google_exceptions.GoogleAuthError) as exc:
                return _refused("invalid_grant", str(exc))
            if "cloud-platform" not in str(claims.get("scope")) or claims.get("exp", 0) < time.time():
                return _refused("invalid_scope", "the assertion asks for no usable scope")
        elif grant == "refresh_token":
            user = self.users.get(form.get("client_id", ""))
            if user is None or user != (form.get("client_secret"), form.get("refresh_token")):
                return _refused("invalid_grant", "Token has been expired or revoked.")
        else:
            return _refused("unsupported_grant_type", f"grant_type {grant!r}")
        return web.json_response({"access_token": self._issue(), "expires_in": LIFETIME, "token_type": "Bearer",
                                  "scope": CLOUD_PLATFORM})

    async def _sts(self, request: web.Request) -> web.Response:
        """https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token"""
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        if form.get("grant_type") != TOKEN_EXCHANGE or form.get("requested_token_type") != ACCESS_TOKEN_TYPE:
            return _refused("invalid_request", "grant_type and requested_token_type must be token exchange's")
        if not str(form.get("audience", "")).startswith("//iam.googleapis.com/"):
            return _refused("invalid_target", "audience must name a workload identity pool provider")
        if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES or \
                form.get("subject_token") not in self.subject_tokens:
            return _refused("invalid_grant", "The subject token is invalid.")
        if CLOUD_PLATFORM not in str(form.get("scope", "")).split():
            return _refused("invalid_scope", "scope must include cloud-platform")
        return web.json_response({"access_token": self._issue(), "issued_token_type": ACCESS_TOKEN_TYPE,
                                  "token_type": "Bearer", "expires_in": LIFETIME})


def _refused(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)
