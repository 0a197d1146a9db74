"""No field or RPC that clients depend on is removed, renumbered, renamed or retyped."""

from __future__ import annotations

import copy
import warnings

import pytest

from tests.contract import snapshot


@pytest.fixture(scope="module")
def current(fds) -> dict:
    return snapshot.describe(fds)


@pytest.fixture(scope="module")
def recorded() -> dict:
    return snapshot.read()


def test_protos_keep_everything_the_snapshot_recorded(current, recorded):
    problems = snapshot.breaking_changes(recorded, current)
    assert not problems, (
        "breaking API changes against tests/contract/api_snapshot.json:\n  "
        + "\n  ".join(problems)
        + f"\nIf this is on purpose (e.g. nothing has shipped yet, or a new vN package), refresh the "
          f"snapshot and commit it with the proto change: {snapshot.REFRESH}")
    if added := snapshot.additions(recorded, current):
        warnings.warn(f"{len(added)} API additions not recorded in the snapshot (allowed; record "
                      f"them with `{snapshot.REFRESH}`): {', '.join(added[:10])}", stacklevel=1)


def test_snapshot_file_is_in_its_canonical_layout(recorded):
    # A hand edit that reorders or reformats it would make the next --write an unreadable diff.
    assert snapshot.SNAPSHOT.read_text() == snapshot.dumps(recorded)


# The checker itself, against edits of the real snapshot: each must be caught, additions not.

def _edit(current: dict, edit) -> dict:
    changed = copy.deepcopy(current)
    edit(changed)
    return changed


FIELD_OWNER = "switchboard.events.v1.UsageRecorded"


def _remove_field(s):
    del s["messages"][FIELD_OWNER]["latency_ms"]


def _renumber_field(s):
    s["messages"][FIELD_OWNER]["latency_ms"]["number"] = 99


def _rename_field(s):
    s["messages"][FIELD_OWNER]["latency_millis"] = s["messages"][FIELD_OWNER].pop("latency_ms")


def _retype_field(s):
    s["messages"][FIELD_OWNER]["latency_ms"]["type"] = "double"


def _repeat_field(s):
    s["messages"][FIELD_OWNER]["latency_ms"]["label"] = "repeated"


def _remove_rpc(s):
    del s["services"]["switchboard.auth.v1.AuthService"]["Authorize"]


def _stream_rpc(s):
    s["services"]["switchboard.auth.v1.AuthService"]["Authorize"]["server_streaming"] = True


def _unbind_rpc(s):
    s["services"]["switchboard.gateway.v1.GatewayService"]["ListModels"]["http"] = []


def _remove_enum_value(s):
    del s["enums"]["switchboard.events.v1.Outcome"]["OUTCOME_CLIENT_ABORT"]


def _remove_message(s):
    del s["messages"][FIELD_OWNER]


@pytest.mark.parametrize("edit, expected", [
    pytest.param(_remove_field, "latency_ms (number 15) removed", id="field removed"),
    pytest.param(_renumber_field, "latency_ms renumbered 15 -> 99", id="field renumbered"),
    pytest.param(_rename_field, "latency_ms renamed to latency_millis", id="field renamed"),
    pytest.param(_retype_field, "latency_ms type changed: int32 -> double", id="field retyped"),
    pytest.param(_repeat_field, "latency_ms label changed: singular -> repeated", id="field made repeated"),
    pytest.param(_remove_rpc, "rpc switchboard.auth.v1.AuthService.Authorize removed", id="rpc removed"),
    pytest.param(_stream_rpc, "Authorize server_streaming changed", id="rpc made streaming"),
    pytest.param(_unbind_rpc, "ListModels lost its HTTP binding GET /v1/models", id="http binding removed"),
    pytest.param(_remove_enum_value, "OUTCOME_CLIENT_ABORT (number 3) removed", id="enum value removed"),
    pytest.param(_remove_message, f"message {FIELD_OWNER} removed", id="message removed"),
])
def test_checker_catches(current, edit, expected):
    problems = snapshot.breaking_changes(current, _edit(current, edit))
    assert any(expected in p for p in problems), problems


def test_checker_allows_additions(current):
    def add(s):
        s["messages"][FIELD_OWNER]["cached_tokens"] = {"number": 22, "type": "int32", "label": "singular"}
        s["services"]["switchboard.auth.v1.AuthService"]["RotateKey"] = {
            "input": "switchboard.auth.v1.RotateKeyRequest", "output": "switchboard.auth.v1.Key",
            "client_streaming": False, "server_streaming": False, "http": ["POST /api/keys/{key_id}/rotate"]}
        s["messages"]["switchboard.auth.v1.RotateKeyRequest"] = {}
    newer = _edit(current, add)
    assert snapshot.breaking_changes(current, newer) == []
    assert f"{FIELD_OWNER}.cached_tokens" in snapshot.additions(current, newer)
