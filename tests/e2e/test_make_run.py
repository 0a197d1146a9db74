"""`make run`'s launcher as a user meets it: progress, base URL and key printed, Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from switchboard_stack.config import DEFAULT_GRPC_PORTS, free_port
from tests.e2e.conftest import REPO


def test_launcher_starts_serves_and_stops_on_ctrl_c(tmp_path):
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
           "SWITCHBOARD_EDGE_PORT": str(free_port()), "SWITCHBOARD_EDGE_ADMIN_PORT": str(free_port()),
           **{f"SWITCHBOARD_{name.upper()}_GRPC_PORT": str(free_port()) for name in DEFAULT_GRPC_PORTS}}
    env.pop("SWITCHBOARD_MASTER_KEY", None)
    env.pop("OPENAI_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "switchboard_stack"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "launcher exited early:\n" + "".join(out)
            out.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(out)
        for name in ("auth", "billing", "guardrails", "memory", "router", "envoy"):
            assert re.search(rf"✓ {name}\s", text), text
        base_url = re.search(r"Base URL:\s+(\S+)", text).group(1)
        key = re.search(r"Master key:\s+(\S+)", text).group(1)
        assert "generated now" in text
        assert (tmp_path / "data" / "master-key").read_text().strip() == key

        reply = httpx.post(base_url + "/chat/completions", headers={"authorization": f"Bearer {key}"},
                           json={"model": "switchboard-local", "messages": [{"role": "user", "content": "hi"}]},
                           timeout=30)
        assert reply.status_code == 200
        models = httpx.get(base_url + "/models", headers={"authorization": f"Bearer {key}"}).json()
        assert "gpt-4o-mini" not in {m["id"] for m in models["data"]}  # no OpenAI key: not offered
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Stopped." in rest
