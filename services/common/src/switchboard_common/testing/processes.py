"""A service started as the launcher starts it, `python -m switchboard_<service>`, and what tests
ask such a process over gRPC: health, reflection, a call that must fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from switchboard_common.testing.infra import free_port

START_TIMEOUT_SECONDS = 20.0


class ServiceProcess:
    """`python -m switchboard_<service>` in a child process on a free loopback port, configured
    only by what the test sets, its stdout and stderr in `<data_dir>/<service>.log`."""

    def __init__(self, service: str, health_service: str, data_dir: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.service = service
        self.health_service = health_service
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = data_dir / f"{service}.log"
        # A developer's SWITCHBOARD_* variables must not leak in.
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        child_env.update({f"SWITCHBOARD_{service.upper()}_GRPC_PORT": str(self.port),
                          "SWITCHBOARD_DATA_DIR": str(data_dir), "SWITCHBOARD_LOG_FORMAT": "json",
                          "PYTHONUNBUFFERED": "1", **(env or {})})
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", f"switchboard_{service}"],
                                         env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict]:
        """The JSON log lines this service wrote (not those of libraries or the interpreter)."""
        lines = (json.loads(line) for line in self.logs().splitlines() if line.startswith("{"))
        return [e for e in lines if e.get("service") == self.service]

    def wait_serving(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Block until health says SERVING for `health_service`; fail with the logs otherwise."""
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.service} exited with {self.proc.returncode}:\n{self.logs()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=self.health_service),
                                       timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise AssertionError(f"{self.service} not SERVING after {timeout}s:\n{self.logs()}")

    def wait_exit(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait for the exit code (what a graceful shutdown must make 0)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running_service(service: str, health_service: str, data_dir: Path,
                    env: Mapping[str, str] | None = None) -> Iterator[ServiceProcess]:
    """A SERVING `ServiceProcess`, killed on exit unless the test stopped it."""
    process = ServiceProcess(service, health_service, data_dir, env)
    try:
        process.wait_serving()
        yield process
    finally:
        process.kill()


def reflected_services(channel: grpc.Channel) -> set[str]:
    """The service names a server lists through gRPC reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    return {s.name for reply in replies for s in reply.list_services_response.service}


def call_expecting_error(channel: grpc.Channel, method: MethodDescriptor) -> grpc.RpcError:
    """Call `method` with an empty request and return the error it fails with."""
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(f"/{method.containing_service.full_name}/{method.name}",
                               request_serializer=request_cls.SerializeToString,
                               response_deserializer=response_cls.FromString)
    try:
        call(request_cls(), timeout=5)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{method.full_name} succeeded; an error was expected")
