"""AuthService: proto <-> domain translation and nothing else."""

from __future__ import annotations

import grpc
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc

from switchboard_common import pagination
from switchboard_common.credentials import bearer_key
from switchboard_common.strict_json import json_twin, refuse_query_override

from switchboard_auth import convert
from switchboard_auth.access import Principal
from switchboard_auth.admission import Admission
from switchboard_auth.budget_fields import dollars_to_micros
from switchboard_auth.domain import KeyFilter, utc_now
from switchboard_auth.keys import KeyAdmin
from switchboard_auth.quota import QuotaLedger, instant
from switchboard_auth.sealed_credentials import SealedCredential, SealedCredentials
from switchboard_auth.tenants import TenantAdmin

class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    # The REST bindings: the body read strictly, then the typed RPC below.
    # A key's budget may come in dollars (AILB's, AI Gateway's spellings): budget_fields.py.
    CreateKeyJson = json_twin("CreateKey", auth_pb2.CreateKeyRequest, prepare=dollars_to_micros)
    UpdateKeyJson = json_twin("UpdateKey", auth_pb2.UpdateKeyRequest, prepare=dollars_to_micros)
    RotateKeyJson = json_twin("RotateKey", auth_pb2.RotateKeyRequest)
    CreateTenantJson = json_twin("CreateTenant", auth_pb2.CreateTenantRequest)
    UpdateTenantJson = json_twin("UpdateTenant", auth_pb2.UpdateTenantRequest)

    def __init__(self, admission: Admission, keys: KeyAdmin, tenants: TenantAdmin,
                 quota: QuotaLedger, credentials: SealedCredentials | None = None) -> None:
        self._credentials = credentials
        self._admission = admission
        self._keys = keys
        self._tenants = tenants
        self._quota = quota

    async def _caller(self, context: grpc.aio.ServicerContext) -> Principal:
        metadata = context.invocation_metadata() or ()
        # AILB's X-User-ID (seeds/002): the user an admin acts for. Text headers arrive as str.
        acting = next((v for k, v in metadata if k == "x-user-id" and isinstance(v, str)), "")
        return await self._admission.principal(bearer_key(metadata), acting.strip())

    # --- admission and quota (internal) -------------------------------------------------------

    async def Authorize(self, request, context):
        verdict = await self._admission.authorize(request.key, request.model)
        key = verdict.key
        return auth_pb2.AuthorizeResponse(
            key_id=key.key_id, tenant_id=key.tenant_id, user_id=key.user_id, name=key.name,
            role=key.role.value, is_admin=key.is_admin, allowed_models=key.allowed_models,
            rate_limits=convert.limits_to_proto(key.effective_limits),
            guardrail_policy_ids=key.effective_policy_ids,
            expires_at=convert.ts(verdict.expires_at),
            cache_ttl_seconds=verdict.cache_ttl_seconds,
            cache_responses=key.effective_cache_responses)

    # --- provider credentials, sealed by the routers (internal) ---------------------------------

    def _store(self) -> SealedCredentials:
        assert self._credentials is not None, "bootstrap builds the credential store"
        return self._credentials

    async def SetSealedCredential(self, request, context):
        c = request.credential
        stored = await self._store().put(SealedCredential(
            credential_id=c.credential_id, provider=c.provider, hint=c.hint, sealed=c.sealed,
            weight=c.weight or 1, rpm=c.rpm or None, created_at=utc_now(), updated_at=utc_now()),
            create=request.create)
        return _sealed(stored)

    async def ListSealedCredentials(self, request, context):
        return auth_pb2.ListSealedCredentialsResponse(
            credentials=[_sealed(c) for c in await self._store().list(request.provider)])

    async def DeleteSealedCredential(self, request, context):
        return _sealed(await self._store().delete(request.credential_id))

    async def LeaseQuota(self, request, context):
        lease = await self._quota.lease(request.key_id, request.replica_id, request.requests,
                                        request.tokens, request.parallel_requests)
        win = lease.windows
        return auth_pb2.LeaseQuotaResponse(
            requests_granted=lease.requests, tokens_granted=lease.tokens,
            parallel_requests_granted=lease.parallel, parallel_requests_held=lease.parallel_held,
            window_started_at=convert.ts(instant(win.minute)),
            window_ends_at=convert.ts(instant(win.minute + 60)),
            day_window_ends_at=convert.ts(instant(win.day + 86_400)),
            parallel_lease_expires_at=convert.ts(lease.parallel_expires_at),
            rate_limits=convert.limits_to_proto(lease.limits),
            requests_remaining=lease.remaining.requests, tokens_remaining=lease.remaining.tokens,
            tokens_remaining_today=lease.remaining.tokens_today)

    async def ReturnQuota(self, request, context):
        window = (convert.dt(request.window_started_at)
                  if request.HasField("window_started_at") else None)
        returned = await self._quota.give_back(request.key_id, request.replica_id, window,
                                               request.requests, request.tokens,
                                               request.parallel_requests)
        return auth_pb2.ReturnQuotaResponse(requests_returned=returned.requests,
                                            tokens_returned=returned.tokens,
                                            parallel_requests_returned=returned.parallel)

    async def ChargeTokens(self, request, context):
        left = await self._quota.charge_tokens(request.key_id, request.tokens)
        return auth_pb2.ChargeTokensResponse(tokens_remaining=left.tokens,
                                             tokens_remaining_today=left.tokens_today)

    # --- keys ---------------------------------------------------------------------------------

    async def CreateKey(self, request, context):
        created = await self._keys.create(await self._caller(context), convert.new_key(request))
        return auth_pb2.CreateKeyResponse(key=convert.key_to_proto(created.key),
                                          secret=created.secret)

    async def ListKeys(self, request, context):
        caller = await self._caller(context)
        where = KeyFilter(tenant_id=request.tenant_id, user_id=request.user_id,
                          name_prefix=request.name_prefix, revoked=convert.opt(request, "revoked"))
        page = await self._keys.list(caller, where, pagination.decode(request.page_token),
                                     pagination.page_size(request.page_size))
        return auth_pb2.ListKeysResponse(keys=[convert.key_to_proto(k) for k in page.keys],
                                         next_page_token=pagination.encode(page.next_cursor))

    async def GetKey(self, request, context):
        refuse_query_override(context, "key_id")
        key = await self._keys.get(await self._caller(context), request.key_id)
        return convert.key_to_proto(key)

    async def UpdateKey(self, request, context):
        key = await self._keys.update(await self._caller(context), request.key_id,
                                      convert.key_patch(request))
        return convert.key_to_proto(key)

    async def RevokeKey(self, request, context):
        refuse_query_override(context, "key_id")  # else ?key_id= would revoke another key
        key = await self._keys.revoke(await self._caller(context), request.key_id)
        return convert.key_to_proto(key)

    async def RotateKey(self, request, context):
        rotated = await self._keys.rotate(await self._caller(context), request.key_id,
                                          convert.opt(request, "grace_period_seconds"))
        return auth_pb2.RotateKeyResponse(
            key=convert.key_to_proto(rotated.key), secret=rotated.secret,
            previous_secret_expires_at=convert.ts(rotated.key.previous_secret_expires_at))

    # --- tenants ------------------------------------------------------------------------------

    async def CreateTenant(self, request, context):
        tenant = await self._tenants.create(await self._caller(context), request.name,
                                            request.tenant_id,
                                            convert.limits_from_proto(request.default_rate_limits),
                                            tuple(request.guardrail_policy_ids),
                                            request.cache_responses)
        return convert.tenant_to_proto(tenant)

    async def ListTenants(self, request, context):
        page = await self._tenants.list(await self._caller(context),
                                        pagination.decode(request.page_token),
                                        pagination.page_size(request.page_size))
        return auth_pb2.ListTenantsResponse(
            tenants=[convert.tenant_to_proto(t) for t in page.tenants],
            next_page_token=pagination.encode(page.next_cursor))

    async def GetTenant(self, request, context):
        refuse_query_override(context, "tenant_id")
        tenant = await self._tenants.get(await self._caller(context), request.tenant_id)
        return convert.tenant_to_proto(tenant)

    async def UpdateTenant(self, request, context):
        tenant = await self._tenants.update(await self._caller(context), request.tenant_id,
                                            convert.tenant_patch(request))
        return convert.tenant_to_proto(tenant)

    async def DeleteTenant(self, request, context):
        refuse_query_override(context, "tenant_id")
        tenant = await self._tenants.delete(await self._caller(context), request.tenant_id)
        return convert.tenant_to_proto(tenant)


def _sealed(c: SealedCredential) -> auth_pb2.SealedCredential:
    return auth_pb2.SealedCredential(
        credential_id=c.credential_id, provider=c.provider, hint=c.hint, sealed=c.sealed,
        weight=c.weight, rpm=c.rpm or 0, created_at=convert.ts(c.created_at),
        updated_at=convert.ts(c.updated_at))
