"""A key never reaches a log file, even when grpc-core logs the raw metadata: a key with one
non-UTF-8 byte appended ("Invalid encoding ...") sent straight to each service, and grpc-core's
own C-level header trace, which it prints to stderr past Python's logging."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from switchboard_common.testing.infra import nats_url

from switchboard_stack.config import free_port
from switchboard_stack.processes import ManagedProcess, grpc_serving
from tests.e2e import raw_grpc
from tests.e2e.conftest import REPO

SECRET = "sk-sb-NEVERLOGGED0123456789abcdef"
BAD_KEY = b"Bearer " + SECRET.encode() + b"\xe9"  # one byte that is not UTF-8

CALLS = {  # a method of each service that reads the key
    "router": "/switchboard.gateway.v1.GatewayService/ChatCompletions",
    "auth": "/switchboard.auth.v1.AuthService/Authorize",
    "billing": "/switchboard.billing.v1.BillingService/GetSpend",
}


def _scan(log: Path, expect: str, timeout: float = 10.0) -> str:
    """The log's text once `expect` appears in it (the launcher's copier writes asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes().decode(errors="replace")
        if expect in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


@pytest.mark.parametrize("service", sorted(CALLS))
def test_a_key_with_a_non_utf8_byte_sent_to_a_service_is_masked_in_its_log(stack, service):
    answer = raw_grpc.call(stack.config.target(service), CALLS[service], [(b"authorization", BAD_KEY)])
    assert answer.get(b"grpc-status") not in (None, b"0"), answer  # refused, as it should be
    text = _scan(stack.logs / f"{service}.log", "Invalid encoding on b'Bearer [REDACTED]")
    assert SECRET not in text
    assert "Invalid encoding on b'Bearer [REDACTED]" in text  # grpc logged it, masked


def test_grpc_cores_own_header_trace_is_masked_where_the_launcher_writes_the_log(tmp_path):
    # GRPC_TRACE=chttp2_hpack_parser makes grpc-core print every header it parses, raw, to stderr.
    port = free_port()
    env = {**os.environ, "GRPC_TRACE": "chttp2_hpack_parser", "GRPC_VERBOSITY": "DEBUG",
           "SWITCHBOARD_AUTH_GRPC_PORT": str(port), "SWITCHBOARD_DATA_DIR": str(tmp_path),
           "SWITCHBOARD_MASTER_KEY": "sk-sb-master-" + "m" * 24, "SWITCHBOARD_NATS_URL": nats_url()}
    auth = ManagedProcess("auth", [sys.executable, "-m", "switchboard_auth"], env,
                          tmp_path / "logs" / "auth.log", cwd=REPO)
    auth.start()
    try:
        auth.wait_ready(grpc_serving(f"127.0.0.1:{port}", "switchboard.auth.v1.AuthService"), 30)
        raw_grpc.call(f"127.0.0.1:{port}", CALLS["auth"], [(b"authorization", BAD_KEY)])
        text = _scan(tmp_path / "logs" / "auth.log", "authorization: Bearer [REDACTED]")
    finally:
        auth.terminate()
        auth.wait_stopped(15)
    assert "authorization: Bearer [REDACTED]" in text  # the C-level line was written, masked
    assert SECRET not in (tmp_path / "logs" / "auth.log").read_bytes().decode(errors="replace")
