"""buf's rules (proto/buf.yaml) catch what they are there for: `make lint` runs them on the tree,
these tests run them on edited copies of it, so a config that stopped checking would fail here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from switchboard_common import protogen

from tests.contract import protoset

BUF = Path(sys.executable).parent / "buf"
CONFIG = protoset.REPO / "proto" / "buf.yaml"
EVENTS = "switchboard/events/v1/events.proto"
AUTH = "switchboard/auth/v1/auth.proto"


def _image(tmp_path: Path, edit: tuple[str, str, str] | None = None) -> str:
    """The protos (one file edited: replace `old` by `new`) built as the descriptor set buf reads."""
    root = tmp_path / "proto"
    shutil.copytree(protoset.PROTO_ROOT, root / "switchboard")
    if edit is not None:
        path, old, new = edit
        text = (root / path).read_text()
        assert old in text, f"{old!r} is not in {path}: update this test's edits"
        (root / path).write_text(text.replace(old, new, 1))
    protogen.generate(root, tmp_path / "gen")
    return f"{tmp_path / 'gen' / protogen.DESCRIPTOR_SET}#format=binpb"


def _buf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), *args, "--config", str(CONFIG), "--path", "switchboard"],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def current(fds, tmp_path_factory) -> str:
    return _image(tmp_path_factory.mktemp("current"))


def test_buf_lint_passes_on_the_tree_and_catches_a_misnamed_field(current, tmp_path):
    assert _buf("lint", current).returncode == 0
    bad = _image(tmp_path, (EVENTS, "int32 latency_ms = 15;", "int32 latencyMs = 15;"))
    result = _buf("lint", bad)
    assert result.returncode != 0 and "latencyMs" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("edit, expected", [
    pytest.param((EVENTS, "int32 latency_ms = 15;", ""), "latency_ms", id="field removed"),
    pytest.param((EVENTS, "int32 latency_ms = 15;", "int32 latency_ms = 99;"), "15", id="field renumbered"),
    pytest.param((EVENTS, "int32 latency_ms = 15;", "int32 latency_millis = 15;"), "latency_ms",
                 id="field renamed"),
    pytest.param((EVENTS, "int32 latency_ms = 15;", "double latency_ms = 15;"), "latency_ms",
                 id="field retyped"),
    pytest.param((EVENTS, "int32 latency_ms = 15;", "repeated int32 latency_ms = 15;"), "latency_ms",
                 id="field made repeated"),
    pytest.param((EVENTS, "OUTCOME_CLIENT_ABORT = 3;", ""), 'enum value "3"', id="enum value removed"),
    pytest.param((AUTH, "rpc Authorize(AuthorizeRequest) returns (AuthorizeResponse);", ""), "Authorize",
                 id="rpc removed"),
    pytest.param((AUTH, "returns (AuthorizeResponse);", "returns (stream AuthorizeResponse);"),
                 "Authorize", id="rpc made streaming"),
])
def test_buf_breaking_catches(current, tmp_path, edit, expected):
    result = _buf("breaking", _image(tmp_path, edit), "--against", current)
    assert result.returncode != 0, f"not caught: {edit}"
    assert expected in result.stdout, result.stdout + result.stderr


def test_buf_breaking_allows_additions(current, tmp_path):
    added = _image(tmp_path, (EVENTS, "int32 latency_ms = 15;", "int32 latency_ms = 15;\n  int32 queued_ms = 99;"))
    result = _buf("breaking", added, "--against", current)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_baseline_names_its_source():
    # `make proto-baseline REF=...` writes both; a baseline nobody can trace is no baseline.
    baseline = protoset.REPO / "proto" / "baseline"
    assert (baseline / "switchboard.binpb").stat().st_size > 0
    sha = (baseline / "SOURCE").read_text().split()[0]
    assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha)
