"""Stored responses of OpenAI's Responses API, for the router: storing (in progress, then as it
ended), reading one, reading the chain a new request continues, deleting, and the retention
sweep. Items and response objects are JSON text the router wrote; they are checked to be JSON of
the right kind and otherwise kept as sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import orjson
import structlog

from switchboard_common.errors import InvalidRequest, NotFound

from switchboard_memory.domain import RESPONSE_STATUSES, StoredResponse, utc_now
from switchboard_memory.response_repository import ResponseRepository
from switchboard_memory.sessions import check_id
from switchboard_memory.settings import MemorySettings

_log = structlog.get_logger("stored_responses")


def not_found(response_id: str) -> NotFound:
    # OpenAI's words for an id it does not know; another tenant's id reads the same.
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id",
                    code="response_not_found")


class StoredResponses:
    def __init__(self, repo: ResponseRepository, settings: MemorySettings,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._repo = repo
        self._settings = settings
        self._clock = clock

    async def put(self, stored: StoredResponse) -> tuple[bool, datetime | None]:
        """(created, expires_at) of the response stored under its id."""
        _check(stored)
        done = await self._repo.put(stored, self._clock(), self._settings.response_ttl_seconds)
        if done is None:
            raise not_found(stored.response_id)
        return done

    async def get(self, tenant_id: str, response_id: str) -> StoredResponse:
        check_id(response_id, "response_id")
        found = await self._repo.get(tenant_id, response_id, self._clock())
        if found is None:
            raise not_found(response_id)
        return found

    async def chain(self, tenant_id: str, response_id: str) -> list[StoredResponse]:
        check_id(response_id, "response_id")
        limit = self._settings.response_chain_max
        links = await self._repo.chain(tenant_id, response_id, self._clock(), limit)
        if not links:
            raise not_found(response_id)
        if len(links) > limit:
            raise InvalidRequest(
                f"The conversation that response '{response_id}' continues is longer than "
                f"{limit} responses; start a new one with the history it needs in 'input'.",
                param="previous_response_id", code="previous_response_chain_too_long")
        return links

    async def delete(self, tenant_id: str, response_id: str) -> None:
        check_id(response_id, "response_id")
        if not await self._repo.delete(tenant_id, response_id, self._clock()):
            raise not_found(response_id)

    async def sweep_forever(self) -> None:
        """Delete expired responses every retention_sweep_seconds, until cancelled."""
        while True:
            try:
                while (n := await self._repo.sweep(self._clock())) > 0:
                    _log.info("expired responses deleted", responses=n)
            except Exception as exc:  # noqa: BLE001 - a failed sweep is retried next period
                _log.warning("response retention sweep failed", error=type(exc).__name__)
            await asyncio.sleep(self._settings.retention_sweep_seconds)


def _check(stored: StoredResponse) -> None:
    check_id(stored.response_id, "response_id")
    if not stored.tenant_id:
        raise InvalidRequest("'tenant_id' is required.", param="tenant_id", code="invalid_value")
    if stored.previous_response_id:
        check_id(stored.previous_response_id, "previous_response_id")
    if stored.status not in RESPONSE_STATUSES:
        raise InvalidRequest("'status' must be set.", param="status", code="invalid_value")
    for name, kind in (("input_items_json", list), ("response_json", dict)):
        text = stored.input_items if kind is list else stored.response
        try:
            ok = isinstance(orjson.loads(text), kind)
        except orjson.JSONDecodeError:
            ok = False
        if not ok:
            raise InvalidRequest(f"'{name}' must be a JSON {'array' if kind is list else 'object'}.",
                                 param=name, code="invalid_value")
