"""The gRPC server: the memory servicer beside health and reflection, and its lifecycle."""

from __future__ import annotations

from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc
from switchboard_common import grpc_server

from switchboard_memory import bootstrap
from switchboard_memory.settings import MemorySettings

SERVICE_NAME = memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name


async def serve(settings: MemorySettings, app: bootstrap.App) -> None:
    """Serve until SIGTERM or SIGINT, then drain (see `switchboard_common.grpc_server.serve`)."""
    server, health = grpc_server.build([SERVICE_NAME])
    memory_pb2_grpc.add_MemoryServiceServicer_to_server(app.servicer, server)
    await grpc_server.serve(server, health, settings, [SERVICE_NAME], on_shutdown=app.on_shutdown)


async def run(settings: MemorySettings) -> None:
    """Build the app and serve it: what `python -m switchboard_memory` runs."""
    await serve(settings, bootstrap.build(settings))
