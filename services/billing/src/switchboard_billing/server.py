"""Builds and runs billing's gRPC server: the servicer, health, reflection, graceful shutdown."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health
from switchboard.billing.v1 import billing_pb2

from switchboard_common import grpc_server

from switchboard_billing import bootstrap
from switchboard_billing.servicer import BillingServicer
from switchboard_billing.settings import BillingSettings

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name


def create(app: bootstrap.App) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with BillingService registered, not yet bound to a port."""
    server, health_servicer = grpc_server.build([SERVICE_NAME])
    grpc_server.add_service(server, SERVICE_NAME, BillingServicer(app.queries, app.budgets, app.prices))
    return server, health_servicer


async def run(settings: BillingSettings) -> None:
    app = await bootstrap.build(settings)
    server, health_servicer = create(app)
    await grpc_server.serve(server, health_servicer, settings, [SERVICE_NAME],
                            on_shutdown=[app.close])
