"""deploy/k8s and the container builds hold together: the only check they get without a cluster.

Plain PyYAML over every manifest: each Deployment has probes, resources, a matching Service and
the environment its service reads; names, ports, images and secrets agree across files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from edge import render
from tests.contract import protoset

DEPLOY = protoset.REPO / "deploy"
K8S = DEPLOY / "k8s"
PYTHON_SERVICES = {"router": 50051, "auth": 50052, "billing": 50053, "guardrails": 50054, "memory": 50055}
WITH_DATABASE = {"auth", "billing", "memory"}
EXAMPLE_SECRETS = "secrets.example.yaml"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
GENERATED_FILES = {f for g in KUSTOMIZATION.get("configMapGenerator", []) for f in g.get("files", [])}
OBJECTS = [d for name in KUSTOMIZATION["resources"] for d in _docs(K8S / name)]
SECRETS = {d["metadata"]["name"]: d for d in _docs(K8S / EXAMPLE_SECRETS)}


def _of_kind(kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in OBJECTS if o["kind"] == kind}


DEPLOYMENTS = _of_kind("Deployment")
SERVICES = _of_kind("Service")
CONFIG = _of_kind("ConfigMap")["switchboard-config"]["data"]


def _container(name: str) -> dict:
    (container,) = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _env_values(container: dict) -> dict[str, str]:
    """What the container sees: the ConfigMaps it loads, then its own `value` entries."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(_of_kind("ConfigMap")[source["configMapRef"]["name"]]["data"])
    values.update({n: e["value"] for n, e in _env(container).items() if "value" in e})
    return values


def test_every_file_is_accounted_for():
    listed = {"kustomization.yaml", EXAMPLE_SECRETS, *KUSTOMIZATION["resources"], *GENERATED_FILES}
    on_disk = {str(p.relative_to(K8S)) for p in K8S.rglob("*.y*ml")}
    assert on_disk == listed, "add new manifests to kustomization.yaml (or remove stray files)"


def test_one_deployment_and_service_per_component():
    assert set(DEPLOYMENTS) == {*PYTHON_SERVICES, "edge"}
    assert set(SERVICES) == set(DEPLOYMENTS)


@pytest.mark.parametrize("name", sorted({*PYTHON_SERVICES, "edge"}))
def test_deployment_has_probes_resources_and_a_non_root_sandbox(name):
    spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    container = _container(name)
    ports = {p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container, f"{name} has no {probe}"
        handler = container[probe].get("grpc") or container[probe].get("tcpSocket") or {}
        assert handler.get("port") in ports, f"{name} {probe} probes a port it does not expose"
    resources = container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(PYTHON_SERVICES))
def test_python_service_probes_grpc_health_of_its_proto_service(name):
    container = _container(name)
    cluster = name  # edge/render.py names its clusters after the services
    assert container["readinessProbe"]["grpc"]["service"] == render.SERVICES[cluster]
    assert container["readinessProbe"]["grpc"]["port"] == PYTHON_SERVICES[name]
    assert "grpc" in container["livenessProbe"]


@pytest.mark.parametrize("name", sorted({*PYTHON_SERVICES, "edge"}))
def test_service_selects_the_pods_and_targets_their_ports(name):
    service = SERVICES[name]["spec"]
    template = DEPLOYMENTS[name]["spec"]["template"]
    assert service["selector"].items() <= template["metadata"]["labels"].items()
    assert DEPLOYMENTS[name]["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    port_names = {p["name"] for p in _container(name)["ports"]}
    assert {p["targetPort"] for p in service["ports"]} <= port_names
    if name in PYTHON_SERVICES:
        # Headless, so DNS lists every pod and the callers balance per request.
        assert service.get("clusterIP") == "None"
        assert {p["name"]: p["port"] for p in service["ports"]}["grpc"] == PYTHON_SERVICES[name]


def test_images_are_named_after_their_component_and_share_one_tag():
    tags = {i["name"]: i["newTag"] for i in KUSTOMIZATION["images"]}
    for name in DEPLOYMENTS:
        assert _container(name)["image"] == f"switchboard/{name}"
    assert set(tags) == {f"switchboard/{name}" for name in DEPLOYMENTS}
    assert len(set(tags.values())) == 1, tags


@pytest.mark.parametrize("name", sorted(PYTHON_SERVICES))
def test_python_service_env(name):
    container = _container(name)
    prefix = f"SWITCHBOARD_{name.upper()}_"
    values, env = _env_values(container), _env(container)
    assert values[f"{prefix}GRPC_PORT"] == str(PYTHON_SERVICES[name])
    assert PYTHON_SERVICES[name] in {p["containerPort"] for p in container["ports"]}
    assert values["SWITCHBOARD_HOST"] == "0.0.0.0"  # the default, 127.0.0.1, is unreachable from other pods
    assert values["SWITCHBOARD_NATS_URL"].startswith("nats://")
    assert env["SWITCHBOARD_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "SWITCHBOARD_MASTER_KEY"
    database = env.get(f"{prefix}DATABASE_URL")
    if name in WITH_DATABASE:
        assert database and "secretKeyRef" in database["valueFrom"], f"{name} needs its database URL"
    else:
        assert database is None
    # Never a suite-wide database URL: every service would read it and share one database.
    assert "SWITCHBOARD_DATABASE_URL" not in values and "SWITCHBOARD_DATABASE_URL" not in env


def test_router_gets_its_config_file_provider_keys_and_neighbours():
    container = _container("router")
    values = _env_values(container)
    config_path = Path(values["SWITCHBOARD_ROUTER_CONFIG_PATH"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    volume = next(v for v in DEPLOYMENTS["router"]["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == mount["name"])
    generator = next(g for g in KUSTOMIZATION["configMapGenerator"] if g["name"] == volume["configMap"]["name"])
    assert config_path.name in {Path(f).name for f in generator["files"]}
    assert {"secretRef": {"name": "switchboard-provider-keys", "optional": True}} in container["envFrom"]
    for neighbour in ("AUTH", "BILLING", "GUARDRAILS", "MEMORY"):
        assert f"SWITCHBOARD_{neighbour}_TARGET" in values
    assert _env(container)["SWITCHBOARD_ROUTER_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def _targets() -> dict[str, str]:
    return {k: v for k, v in CONFIG.items() if k.endswith("_TARGET")}


def test_targets_name_existing_services_and_their_grpc_ports():
    ports = {name: {p["port"] for p in s["spec"]["ports"]} for name, s in SERVICES.items()}
    for variable, target in _targets().items():
        host, port = target.rsplit(":", 1)
        assert host in ports and int(port) in ports[host], f"{variable}={target}"


def test_edge_has_an_upstream_for_every_cluster_it_renders():
    values = _env_values(_container("edge"))
    for cluster in render.SERVICES:
        target = values[f"SWITCHBOARD_EDGE_{cluster.upper()}_TARGET"]
        assert target == f"{cluster}:{PYTHON_SERVICES[cluster]}"
    assert values["SWITCHBOARD_EDGE_HOST"] == "0.0.0.0"


def test_secrets_come_from_secrets_the_example_defines():
    for name in DEPLOYMENTS:
        container = _container(name)
        for variable, entry in _env(container).items():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in SECRETS[ref["name"]]["stringData"], f"{name}: {variable}"
            elif re.search(r"KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL", variable) and "value" in entry:
                pytest.fail(f"{name}: {variable} is a literal, not from a Secret")
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"]["name"] in SECRETS
    assert not re.search(r"KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL", " ".join(CONFIG)), "secrets in a ConfigMap"


def _pre_stop_seconds(container: dict) -> float:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    if command[0] == "sleep":
        return float(command[1])
    return float(command[command.index("--deadline-seconds") + 1])  # deploy/edge_drain.py


@pytest.mark.parametrize("name", sorted({*PYTHON_SERVICES, "edge"}))
def test_termination_grace_outlasts_the_drain(name):
    container = _container(name)
    grace = float(_env_values(container).get(f"SWITCHBOARD_{name.upper()}_SHUTDOWN_GRACE_SECONDS", 0))
    if name in PYTHON_SERVICES:
        assert grace > 0, f"{name}: set its drain grace explicitly"
    budget = DEPLOYMENTS[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # Kubernetes kills the pod when this runs out: preStop + drain + a margin for closing clients.
    assert budget >= _pre_stop_seconds(container) + grace + 5, f"{name}: {budget}s is too short"


@pytest.mark.parametrize("name", ["router", "edge"])
def test_router_and_edge_autoscale_and_keep_a_disruption_budget(name):
    hpa = _of_kind("HorizontalPodAutoscaler")[name]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert "replicas" not in DEPLOYMENTS[name]["spec"], "the HPA owns the replica count"
    pdb = _of_kind("PodDisruptionBudget")[name]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= (
        DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"].items())


def test_containerfile_builds_the_services_the_manifests_run():
    text = (DEPLOY / "Containerfile").read_text()
    allowed = re.search(r'case "\$\{SERVICE\}" in ([a-z|]+)\)', text).group(1).split("|")
    assert set(allowed) == set(PYTHON_SERVICES)
    assert "python -m switchboard_common.protogen proto proto/gen" in text
    assert "requirements.lock" in text
    assert "SERVICE_MODULE=switchboard_${SERVICE}" in text
    assert re.search(r"^USER 10001", text, re.M)


def test_edge_containerfile_ships_what_the_edge_manifest_runs():
    text = (DEPLOY / "edge.Containerfile").read_text()
    assert "python -m edge.render --out /etc/envoy/envoy.yaml" in text
    assert re.search(r"^USER 10001", text, re.M)
    hook = _container("edge")["lifecycle"]["preStop"]["exec"]["command"][1]
    assert re.search(rf"^COPY \S+ {re.escape(hook)}$", text, re.M), f"{hook} is not in the image"
    mounts = {m["mountPath"] for m in _container("edge")["volumeMounts"]}
    assert "/etc/envoy" in mounts  # the rendered config, on a read-only root filesystem


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds():
    result = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
    assert kinds.count("Deployment") == len(DEPLOYMENTS)


@pytest.mark.parametrize("env", [{}, {"OPENAI_API_KEY": "sk-test", "GROQ_API_KEY": "gsk-test"}],
                         ids=["no provider keys", "some provider keys"])
def test_router_config_passes_the_routers_own_validation(env):
    config = pytest.importorskip("switchboard_router.config", reason="the router is not in this tree")
    (generator,) = [g for g in KUSTOMIZATION["configMapGenerator"] if g["name"] == "switchboard-router-config"]
    for file in generator["files"]:
        config.load(K8S / file, env)  # raises ConfigError naming the bad field
