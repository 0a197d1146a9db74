"""The gRPC server: the memory servicer beside health and reflection, and its lifecycle."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health
from switchboard.memory.v1 import memory_pb2, stored_responses_pb2

from switchboard_common import grpc_server

from switchboard_memory import bootstrap
from switchboard_memory.settings import MemorySettings

SERVICE_NAME = memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name
RESPONSES_SERVICE_NAME = stored_responses_pb2.DESCRIPTOR.services_by_name[
    "StoredResponseService"].full_name
SERVICE_NAMES = [SERVICE_NAME, RESPONSES_SERVICE_NAME]


def create(app: bootstrap.App) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with MemoryService and StoredResponseService registered, not yet bound."""
    server, health_servicer = grpc_server.build(SERVICE_NAMES)
    grpc_server.add_service(server, SERVICE_NAME, app.servicer)
    grpc_server.add_service(server, RESPONSES_SERVICE_NAME, app.responses)
    return server, health_servicer


async def run(settings: MemorySettings) -> None:
    """Build the app and serve it: what `python -m switchboard_memory` runs."""
    app = await bootstrap.build(settings)
    server, health_servicer = create(app)
    await grpc_server.serve(server, health_servicer, settings, SERVICE_NAMES,
                            on_shutdown=[app.close])
