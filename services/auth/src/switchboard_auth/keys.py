"""Key administration: create, read, list, update and revoke keys, announcing each change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from switchboard_common.errors import InvalidRequest, NotFound

from switchboard_auth.domain import (DEFAULT_TENANT, MASTER_KEY_ID, UNSET, CreatedKey, Key,
                                     KeyChange, KeyPage, KeyPatch, NewKey, utc_now)
from switchboard_auth.hashing import KeyHasher, display_prefix, generate_id, generate_secret
from switchboard_auth.repository import Repository

Notify = Callable[[Key, KeyChange], Awaitable[None]]

_MAX_NAME = 200
_MAX_MODELS = 256
_MAX_METADATA = 64


class KeyAdmin:
    def __init__(self, repo: Repository, hasher: KeyHasher, notify: Notify,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._hasher = hasher
        self._notify = notify
        self._clock = clock

    async def create(self, new: NewKey) -> CreatedKey:
        now = self._clock()
        tenant_id = new.tenant_id or DEFAULT_TENANT
        if tenant_id != DEFAULT_TENANT and not await self._repo.tenant_exists(tenant_id):
            raise NotFound(f"No tenant '{tenant_id}'.", param="tenant_id", code="tenant_not_found")
        _check_name(new.name)
        _check_models(new.allowed_models)
        _check_limit("rate_limits.requests_per_minute", new.rate_limits.requests_per_minute)
        _check_limit("rate_limits.tokens_per_minute", new.rate_limits.tokens_per_minute)
        _check_budget(new.max_budget_micros_usd)
        _check_ids("guardrail_policy_ids", new.guardrail_policy_ids)
        _check_metadata(new.metadata)
        secret = generate_secret()
        key = Key(
            key_id=generate_id("key"), name=new.name, tenant_id=tenant_id,
            key_prefix=display_prefix(secret), allowed_models=tuple(new.allowed_models),
            rate_limits=new.rate_limits, max_budget_micros_usd=new.max_budget_micros_usd,
            guardrail_policy_ids=tuple(new.guardrail_policy_ids), is_admin=False,
            created_at=now, expires_at=_expiry(new, now), metadata=dict(new.metadata),
        )
        await self._repo.insert_key(key, self._hasher.hash(secret))
        await self._notify(key, KeyChange.CREATED)
        return CreatedKey(key=key, secret=secret)

    async def get(self, key_id: str) -> Key:
        key = await self._repo.get_key(key_id) if key_id else None
        if key is None:
            raise NotFound(f"No key '{key_id}'.", param="key_id", code="key_not_found")
        return key

    async def list(self, tenant_id: str, after: tuple[datetime, str] | None,
                   page_size: int) -> KeyPage:
        # One row more than asked tells whether another page exists.
        rows = await self._repo.list_keys(tenant_id, after, page_size + 1)
        page = rows[:page_size]
        more = len(rows) > page_size
        return KeyPage(keys=page,
                       next_cursor=(page[-1].created_at, page[-1].key_id) if more else None)

    async def update(self, key_id: str, patch: KeyPatch) -> Key:
        await self._mutable(key_id)
        values: dict[str, Any] = {}
        if patch.name is not UNSET:
            _check_name(patch.name)
            values["name"] = patch.name
        if patch.allowed_models is not UNSET:
            _check_models(patch.allowed_models)
            values["allowed_models"] = list(patch.allowed_models)
        if patch.requests_per_minute is not UNSET:
            _check_limit("rate_limits.requests_per_minute", patch.requests_per_minute)
            values["requests_per_minute"] = patch.requests_per_minute
        if patch.tokens_per_minute is not UNSET:
            _check_limit("rate_limits.tokens_per_minute", patch.tokens_per_minute)
            values["tokens_per_minute"] = patch.tokens_per_minute
        if patch.max_budget_micros_usd is not UNSET:
            _check_budget(patch.max_budget_micros_usd)
            values["max_budget_micros_usd"] = patch.max_budget_micros_usd
        if patch.expires_at is not UNSET:
            values["expires_at"] = patch.expires_at
        key = await self._repo.update_key(key_id, values)
        if key is None:  # deleted between the check and the update
            raise NotFound(f"No key '{key_id}'.", param="key_id", code="key_not_found")
        await self._notify(key, KeyChange.UPDATED)
        return key

    async def revoke(self, key_id: str) -> Key:
        await self._mutable(key_id)
        key = await self._repo.revoke_key(key_id, self._clock())
        if key is None:
            raise NotFound(f"No key '{key_id}'.", param="key_id", code="key_not_found")
        await self._notify(key, KeyChange.REVOKED)
        return key

    async def _mutable(self, key_id: str) -> Key:
        if key_id == MASTER_KEY_ID:
            raise InvalidRequest("The master key is set by SWITCHBOARD_MASTER_KEY; change it "
                                 "there.",
                                 param="key_id", code="master_key_immutable")
        return await self.get(key_id)


def _expiry(new: NewKey, now: datetime) -> datetime | None:
    if new.expires_at is not None and new.expires_in_seconds is not None:
        raise InvalidRequest("Set expires_at or expires_in_seconds, not both.",
                             param="expires_in_seconds")
    if new.expires_in_seconds is not None:
        if new.expires_in_seconds <= 0:
            raise InvalidRequest("expires_in_seconds must be positive.", param="expires_in_seconds")
        return now + timedelta(seconds=new.expires_in_seconds)
    if new.expires_at is not None and new.expires_at <= now:
        raise InvalidRequest("expires_at must be in the future.", param="expires_at")
    return new.expires_at


def _check_name(name: str) -> None:
    if len(name) > _MAX_NAME:
        raise InvalidRequest(f"name is longer than {_MAX_NAME} characters.", param="name")


def _check_models(models: tuple[str, ...]) -> None:
    if len(models) > _MAX_MODELS:
        raise InvalidRequest(f"allowed_models holds more than {_MAX_MODELS} entries.",
                             param="allowed_models")
    for model in models:
        # Only a trailing '*' is a wildcard; one elsewhere would silently match nothing.
        if not model or "*" in model[:-1] or len(model) > _MAX_NAME:
            raise InvalidRequest(f"allowed_models has an invalid entry '{model[:_MAX_NAME]}': use "
                                 "a model name or a prefix ending in '*'.", param="allowed_models")


def _check_limit(param: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise InvalidRequest(f"{param} must be positive.", param=param)


def _check_budget(value: int | None) -> None:
    if value is not None and value < 0:
        raise InvalidRequest("max_budget_micros_usd must not be negative.",
                             param="max_budget_micros_usd")


def _check_ids(param: str, ids: tuple[str, ...]) -> None:
    if any(not i or len(i) > _MAX_NAME for i in ids):
        raise InvalidRequest(f"{param} has an empty or over-long id.", param=param)


def _check_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > _MAX_METADATA:
        raise InvalidRequest(f"metadata holds more than {_MAX_METADATA} entries.", param="metadata")
