"""Which tenant a key is in, as auth shows it to the caller: billing owns no keys, so a tenant
admin's right to a key's budget is auth's answer to GetKey made with the caller's own key."""

from __future__ import annotations

import grpc
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

from switchboard_common import errors, grpc_client
from switchboard_common.auth_client import SERVICE

_NOT_VISIBLE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


class KeyDirectory:
    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def tenant_of(self, secret: str, key_id: str) -> str | None:
        """The key's tenant, or None when the caller may not see the key."""
        try:
            key = await self._stub.GetKey(auth_pb2.GetKeyRequest(key_id=key_id),
                                          metadata=(("authorization", f"Bearer {secret}"),),
                                          timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NOT_VISIBLE:
                return None
            raise errors.from_rpc_error(exc, service="auth") from None
        return key.tenant_id

    async def close(self) -> None:
        await self._channel.close()
