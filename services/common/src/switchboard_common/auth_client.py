"""The typed client of auth's AuthService that router and billing share: who a key belongs to,
and the router's rate-limit quota leases, with a deadline on every call."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

from switchboard_common import errors, grpc_client
from switchboard_common.caller import Caller, RateLimits

SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


@dataclass(frozen=True, slots=True)
class Verdict:
    caller: Caller
    ttl_seconds: int  # how long the answer may be reused; 0: auth left it to the caller
    expires_at: float | None  # Unix seconds when the key itself expires


@dataclass(frozen=True, slots=True)
class Grant:
    """What LeaseQuota granted, with the windows it was granted in (Unix seconds)."""

    requests: int
    tokens: int
    parallel: int
    parallel_held: int
    window_start: float
    window_end: float
    day_end: float
    limits: RateLimits
    # Left for every replica together after this grant; None where there is no limit.
    requests_remaining: int | None
    tokens_remaining: int | None
    tokens_remaining_today: int | None


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _opt(message: Message, name: str) -> int | None:
    return getattr(message, name) if message.HasField(name) else None


def limits_from_proto(msg: auth_pb2.RateLimits) -> RateLimits:
    return RateLimits(requests_per_minute=_opt(msg, "requests_per_minute"),
                      tokens_per_minute=_opt(msg, "tokens_per_minute"),
                      tokens_per_day=_opt(msg, "tokens_per_day"),
                      max_parallel_requests=_opt(msg, "max_parallel_requests"))


class AuthClient:
    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def authorize(self, key: str, model: str = "") -> Verdict:
        """Raises Unauthenticated / PermissionDenied / RateLimited as auth decided (its own
        message and code), and ServiceUnavailable when auth cannot be reached."""
        try:
            reply = await self._stub.Authorize(auth_pb2.AuthorizeRequest(key=key, model=model),
                                               timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, service="auth") from None
        limits = limits_from_proto(reply.rate_limits)
        caller = Caller(key_id=reply.key_id, tenant_id=reply.tenant_id, is_admin=reply.is_admin,
                        allowed_models=frozenset(reply.allowed_models),
                        guardrail_policy_ids=tuple(reply.guardrail_policy_ids),
                        role=reply.role, user_id=reply.user_id, rate_limits=limits,
                        cache_responses=reply.cache_responses)
        expires = _seconds(reply.expires_at) if reply.HasField("expires_at") else None
        return Verdict(caller=caller, ttl_seconds=reply.cache_ttl_seconds, expires_at=expires)

    async def lease_quota(self, key_id: str, replica_id: str, *, requests: int = 0,
                          tokens: int = 0, parallel: int = 0) -> Grant:
        reply = await self._call(self._stub.LeaseQuota, auth_pb2.LeaseQuotaRequest(
            key_id=key_id, replica_id=replica_id, requests=requests, tokens=tokens,
            parallel_requests=parallel))

        return Grant(requests=reply.requests_granted, tokens=reply.tokens_granted,
                     parallel=reply.parallel_requests_granted,
                     parallel_held=reply.parallel_requests_held,
                     window_start=_seconds(reply.window_started_at),
                     window_end=_seconds(reply.window_ends_at),
                     day_end=_seconds(reply.day_window_ends_at),
                     limits=limits_from_proto(reply.rate_limits),
                     requests_remaining=_opt(reply, "requests_remaining"),
                     tokens_remaining=_opt(reply, "tokens_remaining"),
                     tokens_remaining_today=_opt(reply, "tokens_remaining_today"))

    async def return_quota(self, key_id: str, replica_id: str, window_start: float, *,
                           requests: int = 0, tokens: int = 0, parallel: int = 0) -> None:
        window = Timestamp()
        window.FromSeconds(int(window_start))
        await self._call(self._stub.ReturnQuota, auth_pb2.ReturnQuotaRequest(
            key_id=key_id, replica_id=replica_id, window_started_at=window, requests=requests,
            tokens=tokens, parallel_requests=parallel))

    async def charge_tokens(self, key_id: str, replica_id: str, tokens: int) -> None:
        await self._call(self._stub.ChargeTokens, auth_pb2.ChargeTokensRequest(
            key_id=key_id, replica_id=replica_id, tokens=tokens))

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, service="auth") from None

    async def close(self) -> None:
        await self._channel.close()
