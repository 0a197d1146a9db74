"""StoredResponseService over gRPC: proto <-> domain translation and nothing else. Internal: the
router calls it with the tenant it admitted, so no key is read here."""

from __future__ import annotations

from datetime import UTC

from switchboard.memory.v1 import stored_responses_pb2 as pb
from switchboard.memory.v1 import stored_responses_pb2_grpc as pb_grpc

from switchboard_common.errors import InvalidRequest

from switchboard_memory.domain import StoredResponse
from switchboard_memory.stored_responses import StoredResponses
from switchboard_memory.wire import timestamp

STATUS_IN = {pb.STORED_RESPONSE_STATUS_IN_PROGRESS: "in_progress",
             pb.STORED_RESPONSE_STATUS_COMPLETED: "completed",
             pb.STORED_RESPONSE_STATUS_INCOMPLETE: "incomplete",
             pb.STORED_RESPONSE_STATUS_FAILED: "failed"}
STATUS_OUT = {v: k for k, v in STATUS_IN.items()}


class StoredResponseServicer(pb_grpc.StoredResponseServiceServicer):
    def __init__(self, responses: StoredResponses) -> None:
        self._responses = responses

    async def SetStoredResponse(self, request, context):
        created, expires = await self._responses.put(stored_in(request))
        return pb.SetStoredResponseResponse(created=created, expires_at=timestamp(expires))

    async def GetStoredResponse(self, request, context):
        return stored_out(await self._responses.get(request.tenant_id, request.response_id))

    async def GetStoredResponseChain(self, request, context):
        links = await self._responses.chain(request.tenant_id, request.response_id)
        return pb.GetStoredResponseChainResponse(responses=[stored_out(s) for s in links])

    async def DeleteStoredResponse(self, request, context):
        await self._responses.delete(request.tenant_id, request.response_id)
        return pb.DeleteStoredResponseResponse(response_id=request.response_id)


def _text(data: bytes, field: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"'{field}' must be UTF-8 JSON.", param=field,
                             code="invalid_value") from None


def stored_in(r: pb.SetStoredResponseRequest) -> StoredResponse:
    if not r.HasField("created_at"):
        raise InvalidRequest("'created_at' is required.", param="created_at", code="invalid_value")
    return StoredResponse(
        response_id=r.response_id, tenant_id=r.tenant_id, key_id=r.key_id, model=r.model,
        status=STATUS_IN.get(r.status, ""), created_at=r.created_at.ToDatetime(tzinfo=UTC),
        input_items=_text(r.input_items_json, "input_items_json"),
        response=_text(r.response_json, "response_json"),
        previous_response_id=r.previous_response_id or None)


def stored_out(s: StoredResponse) -> pb.StoredResponse:
    out = pb.StoredResponse(
        response_id=s.response_id, tenant_id=s.tenant_id, key_id=s.key_id,
        previous_response_id=s.previous_response_id or "", model=s.model,
        status=STATUS_OUT[s.status], created_at=timestamp(s.created_at),
        input_items_json=s.input_items.encode(), response_json=s.response.encode())
    for name in ("updated_at", "expires_at"):
        value = timestamp(getattr(s, name))
        if value is not None:
            getattr(out, name).CopyFrom(value)
    return out
