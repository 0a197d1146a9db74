"""Log lines as a service writes them: one JSON format for ours and every library's, the
`service` field on every line (requests included), and no secret anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import grpc
from switchboard.guardrails.v1 import guardrails_pb2

from switchboard_common.testing.processes import call_expecting_error, running_service

SECRET = "sk-sb-LOGSECRET0123456789"


def _lines(script: str) -> list[dict]:
    """Run `script` after logs.configure("demo") in a fresh interpreter; its stderr as JSON lines."""
    code = "from switchboard_common import logs\nlogs.configure('demo')\n" + textwrap.dedent(script)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert SECRET not in result.stderr, result.stderr
    return [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON


def test_library_lines_are_structlog_json_like_ours():
    lines = _lines("""
        import logging, structlog, warnings
        structlog.get_logger("rpc").info("ours", code="OK")
        logging.getLogger("some.library").warning('a "quoted"\\nmessage')
        warnings.warn("deprecated")
    """)
    ours, library, warned = lines
    assert library["event"] == 'a "quoted"\nmessage'  # a hand-written format breaks on quotes
    assert library["logger"] == "some.library" and library["level"] == "warning"
    assert warned["logger"] == "py.warnings"
    for line in lines:
        assert line["service"] == "demo" and line["timestamp"].endswith("Z")
    assert set(ours) >= {"event", "level", "service", "timestamp", "code"}


def test_secrets_are_masked_in_our_lines_libraries_and_uncaught_exceptions():
    lines = _lines(f"""
        import logging, structlog
        structlog.get_logger("rpc").info("ours", header="Bearer {SECRET}")
        logging.getLogger("grpc._cython.cygrpc").error("Invalid encoding on %r",
                                                       b"Bearer {SECRET}\\xe9")
        try:
            raise ValueError("bad key {SECRET}")
        except ValueError:
            logging.getLogger("lib").exception("failed")
        raise RuntimeError("uncaught with {SECRET}")
    """)
    assert [line["event"] for line in lines] == [
        "ours", "Invalid encoding on b'Bearer [REDACTED]'", "failed", "uncaught exception"]
    assert "[REDACTED]" in lines[2]["exception"] and "RuntimeError" in lines[3]["exception"]


def test_every_line_of_a_served_request_carries_the_service(tmp_path):
    service = guardrails_pb2.DESCRIPTOR.services_by_name["GuardrailsService"]
    with running_service("guardrails", service.full_name, tmp_path) as process, \
            grpc.insecure_channel(process.target) as channel:
        call_expecting_error(channel, service.methods_by_name["CheckInput"])
        assert process.stop() == 0
    lines = [json.loads(line) for line in process.logs().splitlines() if line.startswith("{")]
    rpc = [line for line in lines if line["event"] == "rpc"]
    assert rpc and rpc[0]["method"].endswith("/CheckInput")
    assert [line for line in lines if line.get("service") != "guardrails"] == []
