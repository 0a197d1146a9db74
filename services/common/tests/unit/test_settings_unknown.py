"""Unknown SWITCHBOARD_* variables are named at start with the closest known one, never ignored."""

from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict
from structlog.testing import capture_logs

from switchboard_common.settings import CommonSettings, unknown_variables, warn_unknown_variables


class RouterLike(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_ROUTER_", frozen=True, extra="ignore")

    config_path: str = "switchboard.yaml"
    auth_target: str = ""


class AuthLike(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_AUTH_", frozen=True, extra="ignore")

    master_key: str = ""


def test_a_typo_names_the_closest_known_variable():
    assert unknown_variables(RouterLike, {"SWITCHBOARD_ROUTER_GRCP_PORT": "1"}) == [
        ("SWITCHBOARD_ROUTER_GRCP_PORT", "SWITCHBOARD_ROUTER_GRPC_PORT")]
    assert unknown_variables(RouterLike, {"SWITCHBOARD_NATS_ULR": "x"}) == [
        ("SWITCHBOARD_NATS_ULR", "SWITCHBOARD_NATS_URL")]
    assert unknown_variables(RouterLike, {"SWITCHBOARD_ROUTER_WHATEVER": "1"}) == [
        ("SWITCHBOARD_ROUTER_WHATEVER", None)]


@pytest.mark.parametrize("settings_cls", [RouterLike, AuthLike])
def test_known_names_pass_in_either_form(settings_cls):
    env = {"SWITCHBOARD_NATS_URL": "x", "SWITCHBOARD_DATA_DIR": "d", "SWITCHBOARD_LOG_LEVEL": "INFO",
           "switchboard_host": "0.0.0.0",  # read case-insensitively, so judged so
           "SWITCHBOARD_MASTER_KEY": "k", "SWITCHBOARD_CONFIG_PATH": "c",
           "SWITCHBOARD_AUTH_TARGET": "auth:50052",  # the router's field, in auth's prefix
           "SWITCHBOARD_EDGE_PORT": "8080", "SWITCHBOARD_TEST_NATS_URL": "x", "PATH": "/bin"}
    assert unknown_variables(settings_cls, env) == []


def test_each_service_judges_only_its_own_prefix():
    env = {"SWITCHBOARD_ROUTER_X": "1", "SWITCHBOARD_AUTH_Y": "1"}
    assert unknown_variables(RouterLike, env) == [("SWITCHBOARD_ROUTER_X", None)]
    assert unknown_variables(AuthLike, env) == [("SWITCHBOARD_AUTH_Y", None)]
    # A suite-wide name is every service's to judge.
    assert [n for n, _ in unknown_variables(AuthLike, {"SWITCHBOARD_NAT_URL": "x"})] == [
        "SWITCHBOARD_NAT_URL"]


def test_the_warning_is_one_log_line_naming_both():
    with capture_logs() as lines:
        warn_unknown_variables(RouterLike, {"SWITCHBOARD_ROUTER_GRCP_PORT": "1",
                                            "SWITCHBOARD_NATS_URL": "x"})
    (line,) = lines
    assert line["log_level"] == "warning"
    assert (line["variable"], line["closest"]) == ("SWITCHBOARD_ROUTER_GRCP_PORT",
                                                   "SWITCHBOARD_ROUTER_GRPC_PORT")
    assert "did you mean SWITCHBOARD_ROUTER_GRPC_PORT" in line["event"]
