"""Builds and runs guardrails' gRPC server: the servicer, health, reflection, graceful shutdown."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health
from switchboard.guardrails.v1 import guardrails_pb2

from switchboard_common import grpc_server

from switchboard_guardrails import bootstrap
from switchboard_guardrails.servicer import GuardrailsServicer
from switchboard_guardrails.settings import GuardrailsSettings

SERVICE_NAME = guardrails_pb2.DESCRIPTOR.services_by_name["GuardrailsService"].full_name


def create(app: bootstrap.App) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with GuardrailsService registered, not yet bound to a port."""
    server, health_servicer = grpc_server.build([SERVICE_NAME])
    grpc_server.add_service(server, SERVICE_NAME, GuardrailsServicer(app.admin, app.resolver))
    return server, health_servicer


async def run(settings: GuardrailsSettings) -> None:
    app = await bootstrap.build(settings)
    server, health_servicer = create(app)
    await grpc_server.serve(server, health_servicer, settings, [SERVICE_NAME],
                            on_shutdown=[app.close])
