"""Run a grpc.aio server with health, reflection, metrics and a graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import grpc
import structlog
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from switchboard_common import tracing
from switchboard_common.interceptors import ServerInterceptor
from switchboard_common.settings import CommonSettings

_log = structlog.get_logger("server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # base64 images and embedding batches exceed grpc's 4 MiB
# grpc-core's default refuses metadata between 8 and 16 KiB at random (RESOURCE_EXHAUSTED, which
# clients see as 429 and retry). One limit, soft equal to hard, above what the edge lets through
# (edge/render.py: max_request_headers_kb), so an oversize header is the edge's 431.
MAX_METADATA_BYTES = 64 * 1024
METADATA_OPTIONS = (
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
)
SERVER_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    *METADATA_OPTIONS,
    ("grpc.so_reuseport", 0),
)


def build(service_names: Iterable[str], own_lines: Iterable[str] = ()
          ) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with the interceptor, health (every service SERVING once started) and reflection.
    `own_lines`: full method names (/package.Service/Method) that log their own line per call."""
    # The tracing interceptor (when on) inside ours: it iterates a streaming handler as an async
    # generator, which the servicers' handlers are and ours (a coroutine writing) is not.
    server = grpc.aio.server(interceptors=[ServerInterceptor(frozenset(own_lines)),
                                           *tracing.server_interceptors()],
                             options=SERVER_OPTIONS)
    health_servicer = health.aio.HealthServicer()
    add_service(server, health.SERVICE_NAME, health_servicer)
    names = [*service_names, reflection.SERVICE_NAME, health.SERVICE_NAME]
    add_service(server, reflection.SERVICE_NAME, reflection.aio.ReflectionServicer(names))
    return server, health_servicer


def add_service(server: grpc.aio.Server, service_name: str, servicer: object) -> None:
    """Serve the proto service `service_name` (its _pb2 module imported) by `servicer`.

    In place of the generated `add_*Servicer_to_server`, which adds the service twice: as a
    generic handler, then as registered methods. grpc.aio keeps one pending request per
    registered method and, on every incoming call, `asyncio.wait`s over all of them (grpc 1.85's
    server.pyx.pxi, the main loop): 37 futures for the router, ~200 k instructions per call.
    The generic handler alone serves the same methods with one pending request (resolved once
    per method: interceptors.py)."""
    server.add_generic_rpc_handlers((generic_handler(service_name, servicer),))


def generic_handler(service_name: str, servicer: object) -> grpc.GenericRpcHandler:
    """The handler table the generated code builds, from the service's descriptor: each method
    of `servicer` with its messages' parser and serializer, by its streaming kind."""
    service = descriptor_pool.Default().FindServiceByName(service_name)
    handlers = {}
    for method in service.methods:
        kind = _HANDLER_KINDS[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=message_factory.GetMessageClass(method.input_type).FromString,
            response_serializer=message_factory.GetMessageClass(method.output_type).SerializeToString)
    return grpc.method_handlers_generic_handler(service_name, handlers)


# (client streams, server streams) -> the handler of that kind of method.
_HANDLER_KINDS: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


async def serve(
    server: grpc.aio.Server,
    health_servicer: health.aio.HealthServicer,
    settings: CommonSettings,
    service_names: Iterable[str],
    on_shutdown: Iterable[Callable[[], Awaitable[None]]] = (),
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down in the order a load balancer needs:
    health NOT_SERVING, keep accepting for the lame-duck period (SIGTERM only), stop accepting,
    drain in-flight calls for the grace period, close clients."""
    port = server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    await server.start()
    names = ["", *service_names]
    for name in names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    _log.info("serving", host=settings.host, port=port, metrics_port=settings.metrics_port or None)

    signals = _Signals()
    await signals.stopping.wait()
    await health_servicer.enter_graceful_shutdown()
    if not signals.hurry.is_set() and settings.shutdown_lame_duck_seconds > 0:
        # Still accepting while NOT_SERVING: callers (the edge's health checks, Kubernetes'
        # readiness probes) take this replica out of rotation before it stops listening, so no
        # request meets a refused connection.
        _log.info("lame duck", seconds=settings.shutdown_lame_duck_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signals.hurry.wait(), settings.shutdown_lame_duck_seconds)
    _log.info("draining", grace_seconds=settings.shutdown_grace_seconds)
    await server.stop(settings.shutdown_grace_seconds)
    for close in on_shutdown:
        try:
            await close()
        except Exception:  # noqa: BLE001 - shutdown goes on whatever one client does
            _log.exception("error while closing")
    tracing.shutdown()
    _log.info("stopped")


class _Signals:
    """SIGTERM (what Kubernetes sends) starts a shutdown with a lame duck; SIGINT (Ctrl-C, or the
    local launcher once its edge is gone) or a second signal skips what is left of it."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.hurry = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if sig == signal.SIGINT or self.stopping.is_set():
            self.hurry.set()
        self.stopping.set()


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a service's async main on uvloop."""
    import uvloop

    uvloop.run(main())
