"""`python -m switchboard_router` names an unknown SWITCHBOARD_* variable at start, with the
closest known name: a typo must not pass silently."""

from __future__ import annotations

from switchboard_common.testing.processes import running_service


def test_a_typo_in_a_router_variable_is_a_warning_naming_the_closest(tmp_path):
    env = {"SWITCHBOARD_ROUTER_GRCP_PORT": "1", "SWITCHBOARD_NATS_URL": "nats://127.0.0.1:1",
           "SWITCHBOARD_ROUTER_NATS_CONNECT_WAIT_SECONDS": "0",
           "SWITCHBOARD_ROUTER_AUTH_TARGET": "127.0.0.1:1",
           "SWITCHBOARD_AUTH_HASH_SECRT": "x"}  # auth's to judge, not the router's
    with running_service("router", "switchboard.gateway.v1.GatewayService", tmp_path,
                         env) as router:
        warnings = [e for e in router.events() if e.get("variable")]
    assert [(e["level"], e["variable"], e["closest"]) for e in warnings] == [
        ("warning", "SWITCHBOARD_ROUTER_GRCP_PORT", "SWITCHBOARD_ROUTER_GRPC_PORT")]
    assert "did you mean SWITCHBOARD_ROUTER_GRPC_PORT?" in warnings[0]["event"]
