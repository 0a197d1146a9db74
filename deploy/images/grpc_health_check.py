"""The service images' HEALTHCHECK: ask the service's gRPC health service, exit 0 only for SERVING.

    python /app/deploy/grpc_health_check.py PORT [SERVICE]

Kubernetes uses its own gRPC probe (deploy/k8s); this is for a container engine (docker, podman)
running the image alone. It asks the same thing the readiness probe asks.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(port: int, service: str = "", timeout: float = 2.0) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            print(f"health: {exc.code().name}", file=sys.stderr)
            return False
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"health: {status}")
    return reply.status == health_pb2.HealthCheckResponse.SERVING


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(0 if check(int(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else "") else 1)
