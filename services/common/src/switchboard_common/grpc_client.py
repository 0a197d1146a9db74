"""Channels to neighbouring services: retry policy in the service config, never in loops."""

from __future__ import annotations

import json

import grpc

from switchboard_common import tracing
from switchboard_common.grpc_server import MAX_MESSAGE_BYTES, METADATA_OPTIONS


def _service_config(service: str) -> str:
    # Retry only what never reached the server's logic (UNAVAILABLE), a few times, quickly.
    # round_robin over every address the name resolves to: with a headless Kubernetes Service
    # each replica spreads its calls over all pods instead of pinning one.
    return json.dumps({
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{
            "name": [{"service": service}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }],
    })


def channel(target: str, service: str) -> grpc.aio.Channel:
    """An insecure channel to `target` (host:port) for the gRPC service named `service`."""
    return grpc.aio.insecure_channel(target, interceptors=tracing.client_interceptors(), options=(
        ("grpc.service_config", _service_config(service)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        *METADATA_OPTIONS,
        ("grpc.keepalive_time_ms", 30_000),
    ))
