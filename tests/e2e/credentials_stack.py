"""The stack the provider-credential e2e tests share: edge, auth, router and NATS with a
credentials key (stored secrets are sealed), INFO logs for the scans that look for secrets in
them, a second router replica on its own port for the tests that need two, and the fake
authorization server with the OpenAI fake that accepts its tokens for the OAuth tests."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import yaml
from switchboard.gateway.v1 import gateway_pb2_grpc

from switchboard_stack import Stack, StackConfig
from switchboard_stack.config import free_port
from switchboard_stack.processes import ManagedProcess, grpc_serving
from tests.fakes.openai_upstream import run_fake_in_thread
from tests.fakes.process import fake_process

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
def oauth_stack(tmp_path: Path, client_id: str, client_secret: str, *, expires_in: float,
                api_keys: set[str], config: Callable[[str, str], dict[str, Any]],
                env: dict[str, str]) -> Iterator[Stack]:
    """The fake authorization server (its client `client_id`, its access tokens lasting
    `expires_in` seconds), the OpenAI fake (accepting the tokens in force and `api_keys`), and a
    credentials stack serving `config(openai_base_url, auth_url)`; `auth_url` is set on it."""
    (tmp_path / "oauth").mkdir()
    tokens_file = tmp_path / "oauth" / "tokens.txt"
    with fake_process("tests.fakes.oauth_fake", tmp_path / "oauth", "--client-id", client_id,
                      "--client-secret", client_secret, "--tokens-file", str(tokens_file),
                      "--expires-in", str(expires_in)) as auth_url:
        fake = run_fake_in_thread(api_keys=api_keys, tokens_file=tokens_file)
        try:
            with credentials_stack(tmp_path, config(fake.base_url, auth_url), env) as stack:
                stack.auth_url = auth_url  # type: ignore[attr-defined]
                yield stack
        finally:
            fake.stop()


def auth_server(stack: Stack, method: str, path: str, **kw: Any) -> dict:
    """A call to the fake authorization server's own API (/_fake/...): its JSON answer."""
    resp = httpx.request(method, stack.auth_url + path, timeout=10, **kw)  # type: ignore[attr-defined]
    resp.raise_for_status()
    return resp.json()


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
