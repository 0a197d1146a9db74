"""Proto messages to domain values and back, including the seeds' compatibility spellings."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.auth.v1 import auth_pb2

from switchboard_common.errors import InvalidRequest

from switchboard_auth.domain import (LIMIT_NAMES, UNSET, Key, _Unset, KeyPatch, NewKey, RateLimits,
                                     Tenant, TenantPatch)

# Flat spellings other gateways' clients send (seeds/002 AILB, seeds/004 AI Gateway), and the
# field each stands for.
_RPM_ALIASES = ("rate_limit_rpm", "rate_limit_override")


def opt(message: Message, name: str):
    return getattr(message, name) if message.HasField(name) else None


def dt(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def limits_from_proto(limits: auth_pb2.RateLimits) -> RateLimits:
    return RateLimits(**{name: opt(limits, name) for name in LIMIT_NAMES})


def limits_to_proto(limits: RateLimits) -> auth_pb2.RateLimits:
    return auth_pb2.RateLimits(**{name: getattr(limits, name) for name in LIMIT_NAMES})


def limit_patch(request: Message, field: str = "rate_limits") -> dict[str, int | None]:
    """The limits an update names: 0 removes one (None here)."""
    if not request.HasField(field):
        return {}
    limits = getattr(request, field)
    return {name: getattr(limits, name) or None for name in LIMIT_NAMES if limits.HasField(name)}


def _rpm_alias(request: Message, canonical_given: bool) -> tuple[str, int] | None:
    given = [name for name in _RPM_ALIASES if request.HasField(name)]
    if len(given) > 1 or (given and canonical_given):
        names = (["rate_limits.requests_per_minute"] if canonical_given else []) + given
        raise InvalidRequest(f"Set only one of {', '.join(names)}: they are the same limit.",
                             param=given[-1], code="invalid_value")
    return (given[0], getattr(request, given[0])) if given else None


def _models(request: auth_pb2.CreateKeyRequest | auth_pb2.UpdateKeyRequest
            ) -> tuple[str, ...] | None:
    if request.allowed_models and request.allowed_models_override:
        raise InvalidRequest("Set allowed_models or allowed_models_override, not both: they are "
                             "the same list.", param="allowed_models_override",
                             code="invalid_value")
    models = request.allowed_models or request.allowed_models_override
    return tuple(models) if models else None


def new_key(request: auth_pb2.CreateKeyRequest) -> NewKey:
    limits = limits_from_proto(request.rate_limits)
    alias = _rpm_alias(request, limits.requests_per_minute is not None)
    if alias is not None:
        limits = limits.patched({"requests_per_minute": alias[1]})
    return NewKey(
        name=request.name, tenant_id=request.tenant_id, user_id=request.user_id,
        role=request.role, allowed_models=_models(request) or (), rate_limits=limits,
        max_budget_micros_usd=opt(request, "max_budget_micros_usd"),
        daily_budget_micros_usd=opt(request, "daily_budget_micros_usd"),
        monthly_budget_micros_usd=opt(request, "monthly_budget_micros_usd"),
        guardrail_policy_ids=tuple(request.guardrail_policy_ids),
        expires_at=dt(request.expires_at) if request.HasField("expires_at") else None,
        expires_in_seconds=opt(request, "expires_in_seconds"), metadata=dict(request.metadata),
        cache_responses=request.cache_responses if request.HasField("cache_responses") else None)


def key_patch(request: auth_pb2.UpdateKeyRequest) -> KeyPatch:
    # Proto3 cannot tell an empty repeated field from an absent one, so an empty allowed_models
    # leaves the list alone; ["*"] allows every model.
    limits = limit_patch(request)
    alias = _rpm_alias(request, "requests_per_minute" in limits)
    if alias is not None:
        limits["requests_per_minute"] = alias[1] or None
    models = _models(request)
    return KeyPatch(
        name=request.name if request.HasField("name") else UNSET,
        user_id=request.user_id if request.HasField("user_id") else UNSET,
        role=request.role if request.HasField("role") else UNSET,
        allowed_models=models if models is not None else UNSET,
        rate_limits=limits,
        max_budget_micros_usd=_given(request, "max_budget_micros_usd"),
        daily_budget_micros_usd=_given(request, "daily_budget_micros_usd"),
        monthly_budget_micros_usd=_given(request, "monthly_budget_micros_usd"),
        expires_at=(UNSET if not request.HasField("expires_at")
                    else None if request.expires_at == Timestamp() else dt(request.expires_at)),
        expires_in_seconds=(request.expires_in_seconds
                            if request.HasField("expires_in_seconds") else UNSET),
        guardrail_policy_ids=_policy_patch(request),
        metadata=dict(request.metadata),
        cache_responses=_cache_patch(request),
    )


def _cache_patch(request: auth_pb2.UpdateKeyRequest) -> bool | _Unset | None:
    if request.clear_cache_responses:
        if request.HasField("cache_responses"):
            raise InvalidRequest("Set cache_responses or clear_cache_responses, not both.",
                                 param="clear_cache_responses", code="invalid_value")
        return None
    return request.cache_responses if request.HasField("cache_responses") else UNSET


def _given(request: Message, name: str) -> int | _Unset:
    return getattr(request, name) if request.HasField(name) else UNSET


def _policy_patch(request: auth_pb2.UpdateKeyRequest | auth_pb2.UpdateTenantRequest
                  ) -> tuple[str, ...] | _Unset:
    if request.guardrail_policy_ids and request.clear_guardrail_policy_ids:
        raise InvalidRequest("Set guardrail_policy_ids or clear_guardrail_policy_ids, not both.",
                             param="clear_guardrail_policy_ids", code="invalid_value")
    if request.clear_guardrail_policy_ids:
        return ()
    return tuple(request.guardrail_policy_ids) if request.guardrail_policy_ids else UNSET


def tenant_patch(request: auth_pb2.UpdateTenantRequest) -> TenantPatch:
    return TenantPatch(name=request.name if request.HasField("name") else UNSET,
                       default_rate_limits=limit_patch(request, "default_rate_limits"),
                       guardrail_policy_ids=_policy_patch(request),
                       cache_responses=(request.cache_responses
                                        if request.HasField("cache_responses") else UNSET))


def key_to_proto(key: Key) -> auth_pb2.Key:
    return auth_pb2.Key(
        key_id=key.key_id, name=key.name, tenant_id=key.tenant_id, user_id=key.user_id,
        role=key.role.value, key_prefix=key.key_prefix, key_hint=key.key_hint,
        allowed_models=key.allowed_models, rate_limits=limits_to_proto(key.rate_limits),
        effective_rate_limits=limits_to_proto(key.effective_limits),
        max_budget_micros_usd=key.max_budget_micros_usd,
        guardrail_policy_ids=key.guardrail_policy_ids, created_at=ts(key.created_at),
        updated_at=ts(key.updated_at), expires_at=ts(key.expires_at),
        revoked_at=ts(key.revoked_at), previous_secret_expires_at=ts(
            key.previous_secret_expires_at), is_admin=key.is_admin, metadata=dict(key.metadata),
        cache_responses=key.cache_responses)


def tenant_to_proto(tenant: Tenant) -> auth_pb2.Tenant:
    return auth_pb2.Tenant(tenant_id=tenant.tenant_id, name=tenant.name,
                           created_at=ts(tenant.created_at), updated_at=ts(tenant.updated_at),
                           guardrail_policy_ids=tenant.guardrail_policy_ids,
                           default_rate_limits=limits_to_proto(tenant.default_rate_limits),
                           cache_responses=tenant.cache_responses)
