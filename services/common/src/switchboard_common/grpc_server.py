"""Run a grpc.aio server with health, reflection, metrics and a graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from switchboard_common.interceptors import ServerInterceptor
from switchboard_common.settings import CommonSettings

_log = structlog.get_logger("server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # base64 images and embedding batches exceed grpc's 4 MiB
SERVER_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
)


def build(service_names: Iterable[str]) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with the interceptor, health (every service SERVING once started) and reflection."""
    server = grpc.aio.server(interceptors=[ServerInterceptor()], options=SERVER_OPTIONS)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection([*names, reflection.SERVICE_NAME, health.SERVICE_NAME], server)
    return server, health_servicer


async def serve(
    server: grpc.aio.Server,
    health_servicer: health.aio.HealthServicer,
    settings: CommonSettings,
    service_names: Iterable[str],
    on_shutdown: Iterable[Callable[[], Awaitable[None]]] = (),
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down in the order a load balancer needs:
    health NOT_SERVING, stop accepting, drain in-flight calls for the grace period, close clients."""
    port = server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    await server.start()
    names = ["", *service_names]
    for name in names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    _log.info("serving", host=settings.host, port=port, metrics_port=settings.metrics_port or None)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    _log.info("draining", grace_seconds=settings.shutdown_grace_seconds)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace_seconds)
    for close in on_shutdown:
        try:
            await close()
        except Exception:  # noqa: BLE001 - shutdown goes on whatever one client does
            _log.exception("error while closing")
    _log.info("stopped")


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run a service's async main on uvloop."""
    import uvloop

    uvloop.run(main())
