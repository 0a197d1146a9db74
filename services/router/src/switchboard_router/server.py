"""The router's grpc.aio server: GatewayService with health, reflection and the shared interceptor."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health
from switchboard.gateway.v1 import gateway_pb2
from switchboard_common import grpc_server

from switchboard_router import bootstrap
from switchboard_router.config import ConfigError
from switchboard_router.settings import RouterSettings

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name
# The calls served by Gateway.serve from their first step: each, whatever its end, writes the
# request's own line (request_log.py), so the interceptor's line per call would repeat it.
# (/v1/messages and /v1/responses read their body before, so they keep the interceptor's.)
MODEL_REQUESTS = ("ChatCompletions", "Completions", "Embeddings", "Moderations",
                  "CreateChatCompletion", "StreamChatCompletion")


def build(app: bootstrap.App) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    server, health_servicer = grpc_server.build(
        [SERVICE_NAME], own_lines=[f"/{SERVICE_NAME}/{name}" for name in MODEL_REQUESTS])
    grpc_server.add_service(server, SERVICE_NAME, app.servicer)
    return server, health_servicer


async def main(settings: RouterSettings) -> None:
    """Config, tokenizer and upstream pool are ready before the port opens, so health turns
    SERVING only once the router can really serve."""
    try:
        app = await bootstrap.build(settings)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    server, health_servicer = build(app)
    await grpc_server.serve(server, health_servicer, settings, [SERVICE_NAME],
                            on_shutdown=[app.close])
