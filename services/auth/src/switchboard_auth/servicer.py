"""AuthService: proto <-> domain translation and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

from switchboard_common import pagination
from switchboard_common.credentials import bearer_key
from switchboard_common.errors import NotImplementedYet

from switchboard_auth.admission import Admission
from switchboard_auth.domain import UNSET, Key, KeyPatch, NewKey, RateLimits, Tenant
from switchboard_auth.keys import KeyAdmin
from switchboard_auth.tenants import TenantAdmin


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, admission: Admission, keys: KeyAdmin, tenants: TenantAdmin) -> None:
        self._admission = admission
        self._keys = keys
        self._tenants = tenants

    async def Authorize(self, request, context):
        verdict = await self._admission.authorize(request.key, request.model)
        key = verdict.key
        return auth_pb2.AuthorizeResponse(
            key_id=key.key_id, tenant_id=key.tenant_id, is_admin=key.is_admin,
            allowed_models=key.allowed_models, rate_limits=_limits_to_proto(key.rate_limits),
            guardrail_policy_ids=key.guardrail_policy_ids, expires_at=_ts(key.expires_at),
            cache_ttl_seconds=verdict.cache_ttl_seconds)

    async def LeaseQuota(self, request, context):
        raise NotImplementedYet("rate-limit leasing is not built yet")

    async def CreateKey(self, request, context):
        await self._admission.require_admin(_presented_key(context))
        created = await self._keys.create(NewKey(
            name=request.name, tenant_id=request.tenant_id,
            allowed_models=tuple(request.allowed_models),
            rate_limits=_limits_from_proto(request.rate_limits),
            max_budget_micros_usd=_opt(request, "max_budget_micros_usd"),
            guardrail_policy_ids=tuple(request.guardrail_policy_ids),
            expires_at=_dt(request.expires_at) if request.HasField("expires_at") else None,
            expires_in_seconds=_opt(request, "expires_in_seconds"),
            metadata=dict(request.metadata)))
        return auth_pb2.CreateKeyResponse(key=_key_to_proto(created.key), secret=created.secret)

    async def ListKeys(self, request, context):
        await self._admission.require_admin(_presented_key(context))
        page = await self._keys.list(request.tenant_id, pagination.decode(request.page_token),
                                     pagination.page_size(request.page_size))
        return auth_pb2.ListKeysResponse(keys=[_key_to_proto(k) for k in page.keys],
                                         next_page_token=pagination.encode(page.next_cursor))

    async def GetKey(self, request, context):
        await self._admission.require_admin(_presented_key(context))
        return _key_to_proto(await self._keys.get(request.key_id))

    async def UpdateKey(self, request, context):
        await self._admission.require_admin(_presented_key(context))
        return _key_to_proto(await self._keys.update(request.key_id, _patch(request)))

    async def RevokeKey(self, request, context):
        await self._admission.require_admin(_presented_key(context))
        return _key_to_proto(await self._keys.revoke(request.key_id))

    async def CreateTenant(self, request, context):
        await self._admission.require_admin(_presented_key(context))
        return _tenant_to_proto(await self._tenants.create(request.name, request.tenant_id))

    async def ListTenants(self, request, context):
        await self._admission.require_admin(_presented_key(context))
        return auth_pb2.ListTenantsResponse(
            tenants=[_tenant_to_proto(t) for t in await self._tenants.list()])


def _presented_key(context: grpc.aio.ServicerContext) -> str:
    """The caller's API key from the call's metadata; empty when there is none."""
    return bearer_key(context.invocation_metadata())


def _patch(request: auth_pb2.UpdateKeyRequest) -> KeyPatch:
    # Proto3 cannot tell an empty repeated field from an absent one, so an empty allowed_models
    # leaves the list alone; ["*"] allows every model. In rate_limits, 0 removes a limit; an
    # expires_at of the epoch (1970-01-01T00:00:00Z) removes the expiry.
    limits = request.rate_limits if request.HasField("rate_limits") else None
    return KeyPatch(
        name=request.name if request.HasField("name") else UNSET,
        allowed_models=tuple(request.allowed_models) if request.allowed_models else UNSET,
        requests_per_minute=_limit_patch(limits, "requests_per_minute"),
        tokens_per_minute=_limit_patch(limits, "tokens_per_minute"),
        max_budget_micros_usd=(request.max_budget_micros_usd
                               if request.HasField("max_budget_micros_usd") else UNSET),
        expires_at=(UNSET if not request.HasField("expires_at")
                    else None if request.expires_at == Timestamp() else _dt(request.expires_at)),
    )


def _limit_patch(limits: auth_pb2.RateLimits | None, field: str):
    if limits is None or not limits.HasField(field):
        return UNSET
    return getattr(limits, field) or None


def _opt(message, field: str) -> int | None:
    return getattr(message, field) if message.HasField(field) else None


def _limits_from_proto(limits: auth_pb2.RateLimits) -> RateLimits:
    return RateLimits(requests_per_minute=_opt(limits, "requests_per_minute"),
                      tokens_per_minute=_opt(limits, "tokens_per_minute"))


def _limits_to_proto(limits: RateLimits) -> auth_pb2.RateLimits:
    return auth_pb2.RateLimits(requests_per_minute=limits.requests_per_minute,
                               tokens_per_minute=limits.tokens_per_minute)


def _key_to_proto(key: Key) -> auth_pb2.Key:
    return auth_pb2.Key(
        key_id=key.key_id, name=key.name, tenant_id=key.tenant_id, key_prefix=key.key_prefix,
        allowed_models=key.allowed_models, rate_limits=_limits_to_proto(key.rate_limits),
        max_budget_micros_usd=key.max_budget_micros_usd,
        guardrail_policy_ids=key.guardrail_policy_ids, created_at=_ts(key.created_at),
        expires_at=_ts(key.expires_at), revoked_at=_ts(key.revoked_at), is_admin=key.is_admin,
        metadata=dict(key.metadata))


def _tenant_to_proto(tenant: Tenant) -> auth_pb2.Tenant:
    return auth_pb2.Tenant(tenant_id=tenant.tenant_id, name=tenant.name,
                           created_at=_ts(tenant.created_at),
                           guardrail_policy_ids=tenant.guardrail_policy_ids)


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _dt(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)
