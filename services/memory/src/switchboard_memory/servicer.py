"""MemoryService over gRPC: proto <-> domain translation, with no domain behind it yet.

Each RPC says plainly what is missing instead of answering with an empty history or no chunks,
which a caller could not tell from a real, empty session. The interceptor turns
`NotImplementedYet` into UNIMPLEMENTED with `x-http-status: 501`.
"""

from __future__ import annotations

from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc
from switchboard_common.errors import NotImplementedYet

_SEE = "see 'Not built yet' in services/memory/README.md"
SESSIONS_MISSING = f"conversation memory is not built yet (no session store): {_SEE}"
COLLECTIONS_MISSING = f"RAG collections are not built yet (no chunk or vector store): {_SEE}"
CONTEXT_MISSING = f"context building is not built yet (no session or collection store): {_SEE}"


class MemoryServicer(memory_pb2_grpc.MemoryServiceServicer):
    async def BuildContext(self, request: memory_pb2.BuildContextRequest,
                           context) -> memory_pb2.BuildContextResponse:
        raise NotImplementedYet(CONTEXT_MISSING)

    async def AppendTurn(self, request: memory_pb2.AppendTurnRequest,
                         context) -> memory_pb2.AppendTurnResponse:
        raise NotImplementedYet(SESSIONS_MISSING)

    async def GetSession(self, request: memory_pb2.GetSessionRequest, context) -> memory_pb2.Session:
        raise NotImplementedYet(SESSIONS_MISSING)

    async def DeleteSession(self, request: memory_pb2.DeleteSessionRequest,
                            context) -> memory_pb2.DeleteSessionResponse:
        raise NotImplementedYet(SESSIONS_MISSING)

    async def CreateCollection(self, request: memory_pb2.CreateCollectionRequest,
                               context) -> memory_pb2.Collection:
        raise NotImplementedYet(COLLECTIONS_MISSING)

    async def ListCollections(self, request: memory_pb2.ListCollectionsRequest,
                              context) -> memory_pb2.ListCollectionsResponse:
        raise NotImplementedYet(COLLECTIONS_MISSING)

    async def AddDocuments(self, request: memory_pb2.AddDocumentsRequest,
                           context) -> memory_pb2.AddDocumentsResponse:
        raise NotImplementedYet(COLLECTIONS_MISSING)

    async def QueryCollection(self, request: memory_pb2.QueryCollectionRequest,
                              context) -> memory_pb2.QueryCollectionResponse:
        raise NotImplementedYet(COLLECTIONS_MISSING)
