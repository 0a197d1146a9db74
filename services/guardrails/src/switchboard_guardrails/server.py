"""The gRPC server: the guardrails servicer beside health and reflection, and its lifecycle."""

from __future__ import annotations

from switchboard.guardrails.v1 import guardrails_pb2, guardrails_pb2_grpc
from switchboard_common import grpc_server

from switchboard_guardrails import bootstrap
from switchboard_guardrails.settings import GuardrailsSettings

SERVICE_NAME = guardrails_pb2.DESCRIPTOR.services_by_name["GuardrailsService"].full_name


async def serve(settings: GuardrailsSettings, app: bootstrap.App) -> None:
    """Serve until SIGTERM or SIGINT, then drain (see `switchboard_common.grpc_server.serve`)."""
    server, health = grpc_server.build([SERVICE_NAME])
    guardrails_pb2_grpc.add_GuardrailsServiceServicer_to_server(app.servicer, server)
    await grpc_server.serve(server, health, settings, [SERVICE_NAME], on_shutdown=app.on_shutdown)


async def run(settings: GuardrailsSettings) -> None:
    """Build the app and serve it: what `python -m switchboard_guardrails` runs."""
    await serve(settings, bootstrap.build(settings))
