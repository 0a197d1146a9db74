"""The stack the provider-credential e2e tests share: edge, auth, router and NATS with a
credentials key (stored secrets are sealed), INFO logs for the scans that look for secrets in
them, and a second router replica on its own port for the tests that need two."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import yaml
from switchboard.gateway.v1 import gateway_pb2_grpc

from switchboard_stack import Stack, StackConfig
from switchboard_stack.config import free_port
from switchboard_stack.processes import ManagedProcess, grpc_serving

GATEWAY = "switchboard.gateway.v1.GatewayService"


@contextlib.contextmanager
def credentials_stack(tmp_path: Path, config: dict[str, Any], env: dict[str, str] | None = None
                      ) -> Iterator[Stack]:
    """A started stack serving `config` (written to tmp_path/switchboard.yaml); its
    `config_path` and `root` (where every log goes) are set on it for the tests."""
    path = tmp_path / "switchboard.yaml"
    path.write_text(yaml.safe_dump(config))
    full_env = {"SWITCHBOARD_CREDENTIALS_KEY": base64.b64encode(os.urandom(32)).decode(),
                "SWITCHBOARD_LOG_LEVEL": "INFO", **(env or {})}
    stack = Stack(StackConfig.ephemeral(tmp_path / "stack", env=full_env, own_nats=True, config_path=path))
    stack.start()
    stack.config_path, stack.root = path, tmp_path / "stack"  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def router_replica(stack: Stack, tmp_path: Path) -> Iterator[gateway_pb2_grpc.GatewayServiceStub]:
    """Another router replica on its own port (the edge routes to the first), as a gRPC stub."""
    first = stack.services["router"]
    port = free_port()
    env = {**first.env, "SWITCHBOARD_ROUTER_GRPC_PORT": str(port),
           "SWITCHBOARD_ROUTER_JOURNAL_DIR": str(tmp_path / "journal-2"),
           "SWITCHBOARD_ROUTER_METRICS_PORT": "0"}
    proc = ManagedProcess("router-2", first.argv, env, tmp_path / "stack" / "router-2.log", cwd=first.cwd)
    proc.start()
    try:
        proc.wait_ready(grpc_serving(f"127.0.0.1:{port}", GATEWAY), 60)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield gateway_pb2_grpc.GatewayServiceStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait_stopped(15)
        shutil.rmtree(tmp_path / "journal-2", ignore_errors=True)
