"""The guardrails service as a real process: it migrates its database, loads its detectors,
serves health and reflection, refuses a check naming no policy, and stops cleanly on SIGTERM."""

from __future__ import annotations

import grpc
import pytest
from switchboard.guardrails.v1 import guardrails_pb2, guardrails_pb2_grpc

from switchboard_common.testing.processes import reflected_services, running_service

SERVICE = guardrails_pb2.DESCRIPTOR.services_by_name["GuardrailsService"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with running_service("guardrails", SERVICE.full_name, tmp_path_factory.mktemp("guardrails")) as process, \
            grpc.insecure_channel(process.target) as channel:
        yield process, channel


def test_reflection_lists_the_service(service):
    _, channel = service
    assert {SERVICE.full_name, "grpc.health.v1.Health"} <= set(reflected_services(channel))


def test_a_check_naming_no_policy_is_a_400(service):
    _, channel = service
    stub = guardrails_pb2_grpc.GuardrailsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CheckInput(guardrails_pb2.CheckInputRequest(), timeout=5)
    trailers = dict(caught.value.trailing_metadata() or ())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (trailers["x-http-status"], trailers["x-error-param"]) == ("400", "policy_ids")


def test_an_unknown_policy_is_named(service):
    _, channel = service
    stub = guardrails_pb2_grpc.GuardrailsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CheckOutput(guardrails_pb2.CheckOutputRequest(policy_ids=["pol_gone"], text="hi",
                                                           final=True), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "pol_gone" in (caught.value.details() or "")


def test_sigterm_exits_cleanly(tmp_path):
    with running_service("guardrails", SERVICE.full_name, tmp_path) as process:
        assert process.stop(timeout=8) == 0, process.logs()
        events = [e["event"] for e in process.events()]
    assert [e for e in events if e in ("serving", "draining", "stopped")] == [
        "serving", "draining", "stopped"]
    assert "detectors loaded" in events


def test_an_unknown_variable_is_named_at_start_with_the_closest_known_one(tmp_path):
    env = {"SWITCHBOARD_GUARDRAILS_SHUTDOWN_GRACE_SECOND": "1", "SWITCHBOARD_NATS_URL": "nats://x:1",
           "SWITCHBOARD_ROUTER_GRCP_PORT": "1"}  # the router's to judge, not guardrails'
    with running_service("guardrails", SERVICE.full_name, tmp_path, env) as process:
        warnings = [e for e in process.events() if e.get("variable")]
    assert [(e["level"], e["variable"], e["closest"]) for e in warnings] == [
        ("warning", "SWITCHBOARD_GUARDRAILS_SHUTDOWN_GRACE_SECOND",
         "SWITCHBOARD_GUARDRAILS_SHUTDOWN_GRACE_SECONDS")]
