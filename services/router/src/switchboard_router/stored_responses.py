"""Stored responses of OpenAI's Responses API, kept by memory's StoredResponseService: the chain a
`previous_response_id` continues, a response stored in progress before the provider is called
and again as it ended, GET/DELETE /v1/responses/{id}, its input_items and cancel. Only requests
that store or continue a response (and those routes) reach this module.

A response belongs to the tenant of the key that made it: every key of the tenant reads,
continues and deletes it (OpenAI scopes responses to the project); another tenant's key is told
it does not exist. Memory unreachable: only these requests fail, with a 503, before the provider
is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from switchboard.memory.v1 import stored_responses_pb2 as pb
from switchboard.memory.v1 import stored_responses_pb2_grpc as pb_grpc
from switchboard_common import errors
from switchboard_common.errors import InvalidRequest, NotFound

from switchboard_router.domain import Caller
from switchboard_router.remembering import MemoryRpc

_log = structlog.get_logger("stored_responses")
SERVICE = pb.DESCRIPTOR.services_by_name["StoredResponseService"].full_name
STATUS = {"in_progress": pb.STORED_RESPONSE_STATUS_IN_PROGRESS,
          "completed": pb.STORED_RESPONSE_STATUS_COMPLETED,
          "incomplete": pb.STORED_RESPONSE_STATUS_INCOMPLETE,
          "failed": pb.STORED_RESPONSE_STATUS_FAILED}
MAX_ID = 200  # memory's bound on ids: a longer one was never stored


def not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id",
                    code="response_not_found")


def previous_not_found(response_id: str) -> InvalidRequest:
    # OpenAI answers an unknown previous_response_id with a 400 in these words and this code.
    return InvalidRequest(f"Previous response with id '{response_id}' not found.",
                          param="previous_response_id", code="previous_response_not_found")


def _plausible(response_id: str) -> bool:
    return 0 < len(response_id) <= MAX_ID and response_id.isprintable()


class StoredResponsesClient(MemoryRpc):
    """The typed client of memory's StoredResponseService."""

    needed_by = ("stored responses need it (store, which is true unless the request says false, "
                 "previous_response_id, GET and DELETE /v1/responses/{id}). Try again later, "
                 "or send store: false with the whole conversation in 'input'.")

    def __init__(self, target: str, timeout_seconds: float) -> None:
        super().__init__(target, SERVICE, pb_grpc.StoredResponseServiceStub, timeout_seconds)

    async def set(self, request: pb.SetStoredResponseRequest) -> pb.SetStoredResponseResponse:
        return await self._call(self._stub.SetStoredResponse, request)

    async def get(self, request: pb.GetStoredResponseRequest) -> pb.StoredResponse:
        return await self._call(self._stub.GetStoredResponse, request)

    async def chain(self, request: pb.GetStoredResponseChainRequest
                    ) -> pb.GetStoredResponseChainResponse:
        return await self._call(self._stub.GetStoredResponseChain, request)

    async def delete(self, request: pb.DeleteStoredResponseRequest
                     ) -> pb.DeleteStoredResponseResponse:
        return await self._call(self._stub.DeleteStoredResponse, request)


class StoredResponses:
    def __init__(self, client: StoredResponsesClient) -> None:
        self._client = client
        self._later: set[asyncio.Task] = set()

    async def history(self, caller: Caller, previous_response_id: str) -> list[Any]:
        """The items of the chain ending at previous_response_id, oldest first: each response's
        input items, then its output items."""
        if not _plausible(previous_response_id):
            raise previous_not_found(previous_response_id)
        try:
            reply = await self._client.chain(pb.GetStoredResponseChainRequest(
                tenant_id=caller.tenant_id, response_id=previous_response_id))
        except NotFound:
            raise previous_not_found(previous_response_id) from None
        items: list[Any] = []
        for link in reply.responses:
            items += orjson.loads(link.input_items_json)
            items += orjson.loads(link.response_json).get("output") or []
        return items

    async def get(self, caller: Caller, response_id: str) -> bytes:
        """The response object's JSON as it was answered."""
        if not _plausible(response_id):
            raise not_found(response_id)
        found = await self._client.get(pb.GetStoredResponseRequest(
            tenant_id=caller.tenant_id, response_id=response_id))
        return found.response_json

    async def input_items(self, caller: Caller, response_id: str) -> list[Any]:
        """The response's own input items (not the chain's), as the request sent them."""
        if not _plausible(response_id):
            raise not_found(response_id)
        found = await self._client.get(pb.GetStoredResponseRequest(
            tenant_id=caller.tenant_id, response_id=response_id))
        items = orjson.loads(found.input_items_json or b"[]")
        return items if isinstance(items, list) else []

    async def delete(self, caller: Caller, response_id: str) -> None:
        if not _plausible(response_id):
            raise not_found(response_id)
        await self._client.delete(pb.DeleteStoredResponseRequest(
            tenant_id=caller.tenant_id, response_id=response_id))

    async def begin(self, caller: Caller, shell: dict[str, Any], items: list[Any]) -> Record:
        """Store the response in progress (raising MemoryUnavailable before the provider is
        called when memory cannot be reached); the Record stores it again as it ends."""
        record = Record(self, caller, shell, orjson.dumps(items))
        await self._client.set(record.message(shell))
        return record

    def later(self, work: Coroutine[Any, Any, None]) -> asyncio.Task:
        """Off the request's task, which may be cancelled (the client went away)."""
        task = asyncio.get_running_loop().create_task(work)
        self._later.add(task)
        task.add_done_callback(self._later.discard)
        return task

    async def drain(self) -> None:
        if self._later:
            await asyncio.gather(*self._later, return_exceptions=True)

    async def set(self, message: pb.SetStoredResponseRequest) -> None:
        try:
            await self._client.set(message)
        except errors.ApiError as exc:
            # The client has (or had) its answer; the stored copy stays as it was.
            _log.warning("response not stored", error=exc.code, status=pb.StoredResponseStatus.Name(
                message.status))

    async def remove(self, caller: Caller, response_id: str) -> None:
        try:
            await self.delete(caller, response_id)
        except errors.ApiError as exc:
            _log.warning("in-progress response not removed", error=exc.code)


class Record:
    """One response being stored: ended once, as the client received it, or removed when the
    client never saw its id (refused before any answer, or gone before a whole one)."""

    def __init__(self, store: StoredResponses, caller: Caller, shell: dict[str, Any],
                 items: bytes) -> None:
        self._store, self._caller, self._items = store, caller, items
        self._id: str = shell["id"]
        self._previous: str = shell.get("previous_response_id") or ""
        self._model: str = shell.get("model") or ""
        self._created = datetime.fromtimestamp(shell["created_at"], UTC)
        self.ended = False

    def message(self, response: dict[str, Any]) -> pb.SetStoredResponseRequest:
        out = pb.SetStoredResponseRequest(
            tenant_id=self._caller.tenant_id, key_id=self._caller.key_id, response_id=self._id,
            previous_response_id=self._previous, model=self._model,
            status=STATUS.get(response.get("status") or "", pb.STORED_RESPONSE_STATUS_COMPLETED),
            input_items_json=self._items, response_json=orjson.dumps(response))
        out.created_at.FromDatetime(self._created)
        return out

    async def end(self, response: dict[str, Any]) -> None:
        """Awaited before the answer's last bytes go out: a follow-up sent as soon as the client
        has them must find it."""
        self.ended = True
        # Shielded: a client leaving at this moment must not leave it stored in progress.
        await asyncio.shield(self._store.later(self._store.set(self.message(response))))

    def end_later(self, response: dict[str, Any]) -> None:
        self.ended = True
        self._store.later(self._store.set(self.message(response)))

    def remove_later(self) -> None:
        self.ended = True
        self._store.later(self._store.remove(self._caller, self._id))
