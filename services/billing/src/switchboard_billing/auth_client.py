"""The typed client for auth's AuthService: who a key belongs to, with a deadline on every call."""

from __future__ import annotations

import grpc
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

from switchboard_common import errors, grpc_client

from switchboard_billing.domain import Caller

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


class AuthClient:
    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE_NAME)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def authorize(self, key: str, model: str = "") -> tuple[Caller, int]:
        """The key's owner and how many seconds that answer may be reused; raises auth's own
        ApiError (401 with its code) when refused, and 503 when auth cannot be reached."""
        try:
            reply = await self._stub.Authorize(auth_pb2.AuthorizeRequest(key=key, model=model),
                                               timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, service="auth") from None
        caller = Caller(key_id=reply.key_id, tenant_id=reply.tenant_id, is_admin=reply.is_admin)
        return caller, reply.cache_ttl_seconds

    async def close(self) -> None:
        await self._channel.close()
