"""AWS request authentication for Bedrock: SigV4 signed by botocore, or a Bedrock API key as Bearer.

SigV4 (signing name `bedrock`, not the endpoint's `bedrock-runtime`) is computed per request by
`botocore.auth.SigV4Auth`, over the exact URL, headers and body sent. Credentials come from
botocore's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE and
the shared config files, SSO, container and instance roles), resolved on a worker thread since
the chain may read files or call a metadata service; temporary credentials are refreshed the same
way before botocore's advisory refresh window, one refresh at a time.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4-signing-request.html

A Bedrock API key (AWS_BEARER_TOKEN_BEDROCK) replaces SigV4 with `Authorization: Bearer <key>`,
as botocore itself does for the `bedrock` signing name.
https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError
from switchboard_common.errors import UpstreamError

SIGNING_NAME = "bedrock"


class RequestAuth(Protocol):
    async def ready(self) -> None:
        """Make sure credentials are at hand for the next `headers` (may resolve or refresh them)."""

    def headers(self, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """`headers` plus what authenticates this one request (computed per request)."""


class BearerAuth:
    """A Bedrock API key, sent as a Bearer token."""

    def __init__(self, token: str) -> None:
        self._authorization = f"Bearer {token}"  # Sensitive

    async def ready(self) -> None:
        return None

    def headers(self, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        return {**headers, "Authorization": self._authorization}


def default_chain() -> Any:
    """botocore's credential chain, as every AWS SDK and the CLI resolve it (blocking: call it on
    a worker thread). None when no credentials are configured anywhere."""
    import botocore.session

    return botocore.session.get_session().get_credentials()


class SigV4:
    """SigV4 with credentials from a chain; `resolve` is called on a worker thread."""

    def __init__(self, region: str, resolve: Callable[[], Any] = default_chain) -> None:
        self.region = region
        self._resolve = resolve
        self._source: Any = None  # botocore Credentials or RefreshableCredentials
        self._frozen: ReadOnlyCredentials | None = None
        self._lock = asyncio.Lock()

    async def ready(self) -> None:
        if self._frozen is not None and not _refresh_needed(self._source):
            return
        async with self._lock:  # one resolution or refresh at a time, the others wait for it
            if self._frozen is not None and not _refresh_needed(self._source):
                return
            self._frozen = await asyncio.to_thread(self._fresh)

    def _fresh(self) -> ReadOnlyCredentials:
        if self._source is None:
            self._source = self._resolve()
        if self._source is None:
            raise UpstreamError("No AWS credentials were found for Bedrock (set AWS_ACCESS_KEY_ID "
                                "and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or AWS_BEARER_TOKEN_BEDROCK).",
                                code="provider_auth_error")
        try:
            return self._source.get_frozen_credentials()  # refreshes temporary credentials
        except (BotoCoreError, ClientError, OSError, ValueError) as exc:  # named only: no secret
            raise UpstreamError(f"The AWS credentials for Bedrock could not be refreshed "
                                f"({type(exc).__name__}).", code="provider_auth_error") from None

    def headers(self, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        assert self._frozen is not None, "ready() resolves the credentials before any request"
        frozen = self._frozen
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(Credentials(frozen.access_key, frozen.secret_key, frozen.token),
                  SIGNING_NAME, self.region).add_auth(request)
        return dict(request.headers.items())


def _refresh_needed(source: Any) -> bool:
    """Temporary credentials within botocore's advisory window (15 minutes) of expiring."""
    check = getattr(source, "refresh_needed", None)  # only RefreshableCredentials expire
    return bool(check()) if check is not None else False
