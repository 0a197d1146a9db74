"""What the local stack runs on: ports, data directory, NATS, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from switchboard_common.ports import free_port

SERVICES = ("auth", "billing", "guardrails", "memory", "router")
DEFAULT_GRPC_PORTS = {"router": 50051, "auth": 50052, "billing": 50053, "guardrails": 50054,
                      "memory": 50055}
# Each service's Prometheus endpoint, also served through the edge at /metrics/<service>.
DEFAULT_METRICS_PORTS = {"router": 9091, "auth": 9092, "billing": 9093, "guardrails": 9094,
                         "memory": 9095}


@dataclass
class StackConfig:
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    edge_port: int = 8080
    edge_admin_port: int = 9901
    dashboard_port: int = 8070  # the dashboard's own HTTP port; users reach it through the edge
    grpc_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GRPC_PORTS))
    metrics_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_METRICS_PORTS))
    nats_url: str = "nats://127.0.0.1:4222"
    # Start our own NATS even when one answers at nats_url (tests that stop NATS need their own).
    own_nats: bool = False
    config_path: Path = Path("switchboard.yaml")
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every service
    envoy_concurrency: int = 1
    log_level: str = "INFO"
    # A command put before a service's own (bench/instructions.py runs the router under
    # valgrind), and how long a service may take to turn healthy (much longer under valgrind).
    wrappers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ready_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        grpc_ports = {name: int(env.get(f"SWITCHBOARD_{name.upper()}_GRPC_PORT", port))
                      for name, port in DEFAULT_GRPC_PORTS.items()}
        metrics_ports = {name: int(env.get(f"SWITCHBOARD_{name.upper()}_METRICS_PORT", port))
                         for name, port in DEFAULT_METRICS_PORTS.items()}
        return cls(
            data_dir=Path(env.get("SWITCHBOARD_DATA_DIR", ".data")),
            metrics_ports=metrics_ports,
            edge_port=int(env.get("SWITCHBOARD_EDGE_PORT", "8080")),
            edge_admin_port=int(env.get("SWITCHBOARD_EDGE_ADMIN_PORT", "9901")),
            dashboard_port=int(env.get("SWITCHBOARD_DASHBOARD_HTTP_PORT", "8070")),
            grpc_ports=grpc_ports,
            nats_url=env.get("SWITCHBOARD_NATS_URL", "nats://127.0.0.1:4222"),
            config_path=Path(env.get("SWITCHBOARD_CONFIG_PATH", "switchboard.yaml")),
            envoy_concurrency=int(env.get("SWITCHBOARD_EDGE_CONCURRENCY", "2")),
            log_level=env.get("SWITCHBOARD_LOG_LEVEL", "INFO"),
        )

    @classmethod
    def ephemeral(cls, data_dir: Path, *, metrics: bool = True, **overrides) -> StackConfig:
        """Every port picked free, for tests and benchmarks that run beside `make run`; with
        metrics False no service serves (or counts) metrics."""
        return cls(data_dir=data_dir, edge_port=free_port(), edge_admin_port=free_port(),
                   dashboard_port=free_port(),
                   grpc_ports={name: free_port() for name in DEFAULT_GRPC_PORTS},
                   metrics_ports={name: free_port() for name in DEFAULT_METRICS_PORTS} if metrics
                   else {}, **overrides)

    def ports(self) -> list[tuple[int, str, str]]:
        """(port, what listens there, the variable that moves it) for every port the stack binds."""
        return [(self.edge_port, "Envoy's listener", "SWITCHBOARD_EDGE_PORT"),
                (self.edge_admin_port, "Envoy's admin", "SWITCHBOARD_EDGE_ADMIN_PORT"),
                (self.dashboard_port, "the dashboard", "SWITCHBOARD_DASHBOARD_HTTP_PORT"),
                *((port, name, f"SWITCHBOARD_{name.upper()}_GRPC_PORT")
                  for name, port in self.grpc_ports.items()),
                *((port, f"{name}'s metrics", f"SWITCHBOARD_{name.upper()}_METRICS_PORT")
                  for name, port in self.metrics_ports.items())]

    def target(self, service: str) -> str:
        return f"{self.host}:{self.grpc_ports[service]}"

    @property
    def dashboard_target(self) -> str:
        return f"{self.host}:{self.dashboard_port}"

    def metrics_target(self, service: str) -> str:
        return f"{self.host}:{self.metrics_ports[service]}"

    def service_metrics_targets(self) -> dict[str, str]:
        """The services that serve metrics, and where."""
        return {name: self.metrics_target(name) for name in self.metrics_ports}
