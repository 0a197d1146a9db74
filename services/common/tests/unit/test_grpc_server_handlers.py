"""grpc_server.add_service: each service served through one generic handler whose table is the
one the generated `add_*Servicer_to_server` builds, and never as registered methods."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from switchboard_common import grpc_server

GATEWAY = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


class _Recorder:
    """Stands in for a server: keeps the table the generated code registers."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, grpc.RpcMethodHandler]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, name: str, table: dict) -> None:
        self.tables[name] = table


_METHODS: dict[str, Any] = {}


class _Servicer:
    """Every method of any service: a distinct function per name."""

    def __getattr__(self, name: str) -> Any:
        return _METHODS.setdefault(name, lambda *args: name)


def _details(method: str) -> grpc.HandlerCallDetails:
    class Details(grpc.HandlerCallDetails):
        pass
    details = Details()
    details.method, details.invocation_metadata = method, ()  # type: ignore[attr-defined]
    return details


@pytest.mark.parametrize("service_name, add", [
    (GATEWAY, gateway_pb2_grpc.add_GatewayServiceServicer_to_server),
    (health.SERVICE_NAME, health_pb2_grpc.add_HealthServicer_to_server),
    (reflection.SERVICE_NAME, reflection_pb2_grpc.add_ServerReflectionServicer_to_server),
])
def test_the_table_is_the_generated_one(service_name, add):
    servicer = _Servicer()
    recorder = _Recorder()
    add(servicer, recorder)
    generated = recorder.tables[service_name]
    ours = grpc_server.generic_handler(service_name, servicer)
    assert generated  # every service has methods
    for name, want in generated.items():
        got = ours.service(_details(f"/{service_name}/{name}"))
        assert got is not None, name
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            assert getattr(got, kind) is getattr(want, kind), (name, kind)
        assert (got.request_streaming, got.response_streaming) == \
            (want.request_streaming, want.response_streaming)
        assert got.request_deserializer == want.request_deserializer, name
        assert got.response_serializer == want.response_serializer, name
    assert ours.service(_details(f"/{service_name}/NoSuchMethod")) is None


async def test_health_and_reflection_answer_with_no_registered_method(monkeypatch):
    registered: list[str] = []
    monkeypatch.setattr(type(grpc.aio.server()), "add_registered_method_handlers",
                        lambda self, name, table: registered.append(name))
    server, health_servicer = grpc_server.build([GATEWAY])
    grpc_server.add_service(server, GATEWAY, _Servicer())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await health_servicer.set(GATEWAY, health_pb2.HealthCheckResponse.SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=GATEWAY), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            listed = [s.name async for answer in call for s in answer.list_services_response.service]
            assert set(listed) == {GATEWAY, reflection.SERVICE_NAME, health.SERVICE_NAME}
    finally:
        await server.stop(None)
    assert registered == []
