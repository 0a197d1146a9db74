"""The typed client of auth's AuthService, used only when a verdict is not cached."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_common import errors, grpc_client

from switchboard_router.domain import Caller

SERVICE = "switchboard.auth.v1.AuthService"


@dataclass(frozen=True, slots=True)
class Verdict:
    caller: Caller
    ttl_seconds: int  # 0: auth left it to the router
    expires_at: float | None  # Unix seconds when the key itself expires


class AuthClient:
    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def authorize(self, key: str, model: str) -> Verdict:
        """Raises Unauthenticated / PermissionDenied / RateLimited as auth decided, and
        ServiceUnavailable when auth cannot be reached."""
        try:
            reply = await self._stub.Authorize(auth_pb2.AuthorizeRequest(key=key, model=model),
                                               timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, service="auth") from None
        caller = Caller(key_id=reply.key_id, tenant_id=reply.tenant_id, is_admin=reply.is_admin,
                        allowed_models=frozenset(reply.allowed_models),
                        guardrail_policy_ids=tuple(reply.guardrail_policy_ids))
        expires = reply.expires_at.ToSeconds() + reply.expires_at.nanos / 1e9 \
            if reply.HasField("expires_at") else None
        return Verdict(caller=caller, ttl_seconds=reply.cache_ttl_seconds, expires_at=expires)

    async def close(self) -> None:
        await self._channel.close()
