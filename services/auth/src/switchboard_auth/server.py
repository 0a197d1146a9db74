"""Builds and runs auth's gRPC server: the servicer, health, reflection, graceful shutdown."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health
from switchboard.auth.v1 import auth_pb2

from switchboard_common import grpc_server

from switchboard_auth import bootstrap
from switchboard_auth.servicer import AuthServicer
from switchboard_auth.settings import AuthSettings

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


def create(app: bootstrap.App) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with AuthService registered, not yet bound to a port."""
    server, health_servicer = grpc_server.build([SERVICE_NAME])
    grpc_server.add_service(server, SERVICE_NAME, AuthServicer(
        app.admission, app.keys, app.tenants, app.quota, app.credentials))
    return server, health_servicer


async def run(settings: AuthSettings) -> None:
    app = await bootstrap.build(settings)
    server, health_servicer = create(app)
    await grpc_server.serve(server, health_servicer, settings, [SERVICE_NAME],
                            on_shutdown=[app.close])
