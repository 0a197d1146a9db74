"""`make run`'s launcher as a user meets it: progress, a banner that says what is on and how to
use the key, taken ports named before anything starts, failures shown with this run's lines only,
Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from switchboard_stack.config import DEFAULT_GRPC_PORTS, free_port
from tests.e2e.conftest import REPO


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(data_dir),
           "SWITCHBOARD_EDGE_PORT": str(free_port()), "SWITCHBOARD_EDGE_ADMIN_PORT": str(free_port()),
           **{f"SWITCHBOARD_{name.upper()}_GRPC_PORT": str(free_port()) for name in DEFAULT_GRPC_PORTS},
           **extra}
    env.pop("SWITCHBOARD_MASTER_KEY", None)
    env.pop("OPENAI_API_KEY", None)
    return env


def _launch(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "switchboard_stack"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _failed_run(env: dict[str, str]) -> str:
    """The whole output of a launch that must fail (and exit 1) by itself."""
    proc = _launch(env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    return out


def test_launcher_starts_serves_and_stops_on_ctrl_c(tmp_path):
    proc = _launch(_env(tmp_path / "data"))
    assert proc.stdout is not None
    out: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "launcher exited early:\n" + "".join(out)
            out.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(out)
        for name in ("auth", "billing", "guardrails", "memory", "router", "dashboard", "envoy"):
            assert re.search(rf"✓ {name}\s", text), text
        base_url = _field(text, "Base URL")
        key = _field(text, "Master key")
        assert "generated now" in text
        assert (tmp_path / "data" / "master-key").read_text().strip() == key

        # What is on, what is off and how to turn it on, which models answer.
        providers = re.search(r"Providers:\s+(.*?)\n\s+Models:", text, re.S).group(1)
        assert providers.startswith("local")
        assert "openai (OPENAI_API_KEY)" in providers and "groq (GROQ_API_KEY)" in providers
        models = re.search(r"Models:\s+(.*?)\n\n", text, re.S).group(1)
        assert "switchboard-local" in models and "gpt-4o-mini" not in models
        # The README's curl reads $SWITCHBOARD_MASTER_KEY: the banner says how to set it.
        assert f"export SWITCHBOARD_MASTER_KEY={key}\n" in text

        # The dashboard's URL is the edge's /ui/, which answers with its login page.
        dashboard = _field(text, "Dashboard")
        assert dashboard == base_url.removesuffix("/v1") + "/ui/"
        login = httpx.get(dashboard, follow_redirects=True, timeout=10)
        assert login.status_code == 200 and 'name="api_key"' in login.text

        reply = httpx.post(base_url + "/chat/completions", headers={"authorization": f"Bearer {key}"},
                           json={"model": "switchboard-local", "messages": [{"role": "user", "content": "hi"}]},
                           timeout=30)
        assert reply.status_code == 200
        listed = httpx.get(base_url + "/models", headers={"authorization": f"Bearer {key}"}).json()
        assert {m["id"] for m in listed["data"]} == set(re.split(r",\s+", models.strip()))
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Stopped." in rest


def _field(text: str, name: str) -> str:
    match = re.search(rf"{name}:\s+(\S+)", text)
    assert match, text
    return match.group(1)


def test_a_taken_port_is_named_before_anything_starts(tmp_path):
    data = tmp_path / "data"
    env = _env(data)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env["SWITCHBOARD_AUTH_GRPC_PORT"] = str(port)
        out = _failed_run(env)
    assert f"port {port} (auth) is in use" in out
    assert "set SWITCHBOARD_AUTH_GRPC_PORT to a free port" in out
    assert not (data / "logs").exists(), "something started before the ports were checked"


def test_a_failed_start_shows_only_this_runs_log_lines(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "switchboard.yaml"
    # The first run fails on one mistake; the user fixes it and the second fails on another.
    config.write_text("providers: {local: {type: local}, mine: {type: opnai}}\n"
                      "models: [{name: m, deployments: [{provider: local}]}]\n")
    first = _failed_run(_env(data, SWITCHBOARD_CONFIG_PATH=str(config)))
    assert "opnai" in first
    config.write_text("providers: {local: {type: local, colour: blue}}\n"
                      "models: [{name: m, deployments: [{provider: local}]}]\n")
    second = _failed_run(_env(data, SWITCHBOARD_CONFIG_PATH=str(config)))
    assert "colour" in second
    assert "opnai" not in second, "the fixed error of the previous run is shown again"
    # The previous run's log is kept beside this run's.
    assert "opnai" in (data / "logs" / "router.log.1").read_text()
    assert "opnai" not in (data / "logs" / "router.log").read_text()
