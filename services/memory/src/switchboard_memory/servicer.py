"""MemoryService over gRPC: proto <-> domain translation and nothing else (wire.py converts)."""

from __future__ import annotations

import grpc
from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc

from switchboard_common import pagination
from switchboard_common.credentials import bearer_key
from switchboard_common.strict_json import json_twin, refuse_query_override

from switchboard_memory import wire
from switchboard_memory.access import Access
from switchboard_memory.collections import Collections
from switchboard_memory.context import ContextBuilder
from switchboard_memory.sessions import Sessions


class MemoryServicer(memory_pb2_grpc.MemoryServiceServicer):
    # The REST bindings: the body read strictly, then the typed RPCs below.
    CreateCollectionJson = json_twin("CreateCollection", memory_pb2.CreateCollectionRequest)
    AddDocumentsJson = json_twin("AddDocuments", memory_pb2.AddDocumentsRequest)
    QueryCollectionJson = json_twin("QueryCollection", memory_pb2.QueryCollectionRequest)

    def __init__(self, access: Access, sessions: Sessions, collections: Collections,
                 context: ContextBuilder) -> None:
        self._access = access
        self._sessions = sessions
        self._collections = collections
        self._context = context

    # Internal: the router calls these with the tenant it admitted.

    async def BuildContext(self, request, context):
        return wire.context_response(await self._context.build(wire.context_request(request)))

    async def AppendTurn(self, request, context):
        done = await self._sessions.append(wire.new_turn(request))
        return memory_pb2.AppendTurnResponse(stored_messages=done.stored_messages,
                                             turns=done.turns, already_stored=done.already_stored)

    # Sessions.

    async def ListSessions(self, request, context):
        tenant = await self._tenant(context, request.tenant_id)
        page = await self._sessions.page(tenant, request.key_id,
                                         pagination.decode(request.page_token),
                                         pagination.page_size(request.page_size))
        return memory_pb2.ListSessionsResponse(
            sessions=[wire.session(s) for s in page.sessions],
            next_page_token=pagination.encode(page.next_cursor))

    async def GetSession(self, request, context):
        refuse_query_override(context, "session_id")
        tenant = await self._tenant(context, request.tenant_id)
        session, turns = await self._sessions.get(tenant, request.session_id)
        return wire.session(session, turns)

    async def DeleteSession(self, request, context):
        refuse_query_override(context, "session_id")
        tenant = await self._tenant(context, request.tenant_id)
        deleted = await self._sessions.delete(tenant, request.session_id)
        return memory_pb2.DeleteSessionResponse(turns_deleted=deleted)

    # Collections.

    async def CreateCollection(self, request, context):
        caller = await self._access.tenant(_key(context), request.tenant_id)
        created = await self._collections.create(
            caller, request.name, request.embedding_model,
            request.chunk_tokens if request.HasField("chunk_tokens") else None,
            request.chunk_overlap_tokens if request.HasField("chunk_overlap_tokens") else None)
        return wire.collection(created)

    async def ListCollections(self, request, context):
        tenant = await self._tenant(context, request.tenant_id)
        page, cursor = await self._collections.page(tenant, pagination.decode(request.page_token),
                                                    pagination.page_size(request.page_size))
        return memory_pb2.ListCollectionsResponse(
            collections=[wire.collection(c) for c in page],
            next_page_token=pagination.encode(cursor))

    async def GetCollection(self, request, context):
        refuse_query_override(context, "collection")
        tenant = await self._tenant(context, request.tenant_id)
        return wire.collection(await self._collections.get(tenant, request.collection))

    async def DeleteCollection(self, request, context):
        refuse_query_override(context, "collection")
        tenant = await self._tenant(context, request.tenant_id)
        documents, chunks = await self._collections.delete(tenant, request.collection)
        return memory_pb2.DeleteCollectionResponse(documents_deleted=documents,
                                                   chunks_deleted=chunks)

    async def AddDocuments(self, request, context):
        tenant = await self._tenant(context, request.tenant_id)
        job = await self._collections.add_documents(tenant, request.collection,
                                                    wire.documents_in(request))
        return memory_pb2.AddDocumentsResponse(chunks_added=job.chunks_added,
                                               ingestion=wire.ingestion(job))

    async def GetIngestion(self, request, context):
        refuse_query_override(context, "collection", "ingestion_id")
        tenant = await self._tenant(context, request.tenant_id)
        return wire.ingestion(await self._collections.ingestion(tenant, request.collection,
                                                                 request.ingestion_id))

    async def ListDocuments(self, request, context):
        refuse_query_override(context, "collection")
        tenant = await self._tenant(context, request.tenant_id)
        page, cursor = await self._collections.documents(
            tenant, request.collection, pagination.decode(request.page_token),
            pagination.page_size(request.page_size))
        return memory_pb2.ListDocumentsResponse(documents=[wire.document_info(d) for d in page],
                                                next_page_token=pagination.encode(cursor))

    async def DeleteDocument(self, request, context):
        refuse_query_override(context, "collection", "document_id")
        tenant = await self._tenant(context, request.tenant_id)
        deleted = await self._collections.delete_document(tenant, request.collection,
                                                          request.document_id)
        return memory_pb2.DeleteDocumentResponse(chunks_deleted=deleted)

    async def QueryCollection(self, request, context):
        tenant = await self._tenant(context, request.tenant_id)
        hits = await self._collections.query(
            tenant, request.collection, request.query, request.top_k, wire.filter_in(request),
            request.min_score if request.HasField("min_score") else None)
        return memory_pb2.QueryCollectionResponse(chunks=[wire.chunk(h) for h in hits])

    async def _tenant(self, context: grpc.aio.ServicerContext, requested: str) -> str:
        return (await self._access.tenant(_key(context), requested)).tenant_id


def _key(context: grpc.aio.ServicerContext) -> str:
    """The caller's API key from the call's metadata; empty when there is none."""
    return bearer_key(context.invocation_metadata())
