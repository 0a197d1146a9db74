"""The guardrails service as a real process: health, reflection, honest 501s, clean shutdown."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from switchboard.guardrails.v1 import guardrails_pb2

SERVICE = guardrails_pb2.DESCRIPTOR.services_by_name["GuardrailsService"]


def test_reflection_lists_the_service(guardrails):
    _, channel = guardrails
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        timeout=5)
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert SERVICE.full_name in names
    assert "grpc.health.v1.Health" in names


@pytest.mark.parametrize("method", list(SERVICE.methods), ids=lambda m: m.name)
def test_every_rpc_answers_501_naming_what_is_missing(guardrails, method):
    _, channel = guardrails
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(f"/{SERVICE.full_name}/{method.name}",
                               request_serializer=request_cls.SerializeToString,
                               response_deserializer=response_cls.FromString)
    with pytest.raises(grpc.RpcError) as caught:
        call(request_cls(), timeout=5)
    error = caught.value
    trailers = dict(error.trailing_metadata() or ())
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert trailers.get("x-http-status") == "501"
    assert trailers.get("x-error-type") == "not_implemented"
    assert "not built yet" in error.details()
    assert "services/guardrails/README.md" in error.details()


def test_sigterm_exits_cleanly(own_guardrails):
    service, _ = own_guardrails
    service.terminate()
    assert service.proc.wait(timeout=8) == 0, service.logs()
    events = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    ours = [e for e in events if e.get("service") == "guardrails"]
    assert [e["event"] for e in ours if e["event"] in ("serving", "draining", "stopped")] == [
        "serving", "draining", "stopped"]
