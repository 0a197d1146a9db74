"""The production overlay and the container builds hold together: the only check they get without a cluster.

The overlay as `kubectl kustomize` renders it (tests/contract/kustomize.py): each workload (a
Deployment, or the router's StatefulSet) has probes, resources, a matching Service and the
environment its service reads; names, ports, images and secrets agree across the bases.
tests/contract/test_deploy_overlays.py validates every overlay against Kubernetes' schemas.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import yaml

from edge import render
from tests.contract import kustomize, protoset

DEPLOY = protoset.REPO / "deploy"
K8S = kustomize.K8S
PYTHON_SERVICES = {"router": 50051, "auth": 50052, "billing": 50053, "guardrails": 50054, "memory": 50055}
WITH_DATABASE = {"auth", "billing", "guardrails", "memory"}
DASHBOARD = "dashboard"
COMPONENTS = sorted({*PYTHON_SERVICES, DASHBOARD, "edge"})

PRODUCTION = kustomize.Manifests.of("production")
OBJECTS = PRODUCTION.objects
SECRETS = PRODUCTION.secrets()
_of_kind = PRODUCTION.of_kind
# Every component's workload: Deployments, and the router's StatefulSet (its journal's volume).
DEPLOYMENTS = PRODUCTION.workloads
SERVICES = _of_kind("Service")
CONFIG = _of_kind("ConfigMap")["switchboard-config"]["data"]
_container = PRODUCTION.container
_env_values = PRODUCTION.env_values
_env = kustomize.env


def _referenced_files(kustomization: Path) -> set[Path]:
    """The files a kustomization uses: resources (files, or directories with their own
    kustomization), generators' files, patches' paths."""
    doc = yaml.safe_load(kustomization.read_text())
    here = kustomization.parent
    used = {kustomization}
    for entry in doc.get("resources", []):
        path = (here / entry).resolve()
        used |= _referenced_files(path / "kustomization.yaml") if path.is_dir() else {path}
    for generator in [*doc.get("configMapGenerator", []), *doc.get("secretGenerator", [])]:
        used |= {(here / f.split("=", 1)[-1]).resolve() for f in [*generator.get("files", []),
                                                                  *generator.get("envs", [])]}
    used |= {(here / p["path"]).resolve() for p in doc.get("patches", []) if "path" in p}
    return used


def test_every_file_is_accounted_for():
    used = {kustomize.EXAMPLE_SECRETS.resolve()}
    for overlay in kustomize.OVERLAYS:
        used |= _referenced_files(K8S / "overlays" / overlay / "kustomization.yaml")
    on_disk = {p.resolve() for p in K8S.rglob("*") if p.is_file()}
    assert on_disk == used, "a file no overlay uses (add it to a kustomization, or remove it)"


def test_one_deployment_and_service_per_component():
    assert set(DEPLOYMENTS) == set(COMPONENTS)
    assert set(SERVICES) == set(DEPLOYMENTS)


@pytest.mark.parametrize("name", COMPONENTS)
def test_deployment_has_probes_resources_and_a_non_root_sandbox(name):
    spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    container = _container(name)
    ports = {p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container, f"{name} has no {probe}"
        handler = (container[probe].get("grpc") or container[probe].get("tcpSocket")
                   or container[probe].get("httpGet") or {})
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


@pytest.mark.parametrize("name", COMPONENTS)
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


@pytest.mark.parametrize("overlay", kustomize.OVERLAYS)
def test_images_are_named_after_their_component_and_share_one_tag(overlay):
    manifests = kustomize.Manifests.of(overlay)
    images = {name: manifests.container(name)["image"] for name in manifests.workloads}
    for name, image in images.items():
        assert image.rpartition(":")[0] == f"switchboard/{name}", image
    assert len({image.rpartition(":")[2] for image in images.values()}) == 1, images


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
    config_map = _of_kind("ConfigMap")[volume["configMap"]["name"]]
    # Generated (the name carries a content hash), so editing switchboard.yaml rolls the router.
    assert re.fullmatch(r"switchboard-router-config-[a-z0-9]{10}", config_map["metadata"]["name"])
    assert config_path.name in config_map["data"]
    assert {"secretRef": {"name": "switchboard-provider-keys", "optional": True}} in container["envFrom"]
    for neighbour in ("AUTH", "BILLING", "GUARDRAILS", "MEMORY"):
        assert f"SWITCHBOARD_{neighbour}_TARGET" in values
    assert _env(container)["SWITCHBOARD_ROUTER_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_billing_reads_the_prices_of_the_same_config_file():
    container = _container("billing")
    config_path = Path(_env_values(container)["SWITCHBOARD_BILLING_CONFIG_PATH"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    volume = next(v for v in DEPLOYMENTS["billing"]["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == mount["name"])
    router = _container("router")
    router_path = Path(_env_values(router)["SWITCHBOARD_ROUTER_CONFIG_PATH"])
    router_mount = next(m for m in router["volumeMounts"] if Path(m["mountPath"]) == router_path.parent)
    router_volume = next(v for v in DEPLOYMENTS["router"]["spec"]["template"]["spec"]["volumes"]
                         if v["name"] == router_mount["name"])
    assert volume["configMap"] == router_volume["configMap"] and config_path == router_path
    assert mount.get("readOnly") is True


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


def test_the_dashboard_holds_no_secret_and_meets_the_edge_both_ways():
    container = _container(DASHBOARD)
    spec = DEPLOYMENTS[DASHBOARD]["spec"]["template"]["spec"]
    # It acts only with the key each user logs in with: no Secret reaches it in any form.
    assert not [e for e in container.get("env", []) if "valueFrom" in e]
    assert not [s for s in container.get("envFrom", []) if "secretRef" in s]
    assert not [v for v in spec.get("volumes", []) if "secret" in v]
    values = _env_values(container)
    port = {p["name"]: p["port"] for p in SERVICES[DASHBOARD]["spec"]["ports"]}["http"]
    assert _env_values(_container("edge"))["SWITCHBOARD_EDGE_DASHBOARD_TARGET"] == f"{DASHBOARD}:{port}"
    assert values["SWITCHBOARD_DASHBOARD_HTTP_PORT"] == str(container["ports"][0]["containerPort"])
    edge_port = {p["name"]: p["port"] for p in SERVICES["edge"]["spec"]["ports"]}["http"]
    assert values["SWITCHBOARD_DASHBOARD_EDGE_URL"] == f"http://edge:{edge_port}"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ui/healthz"


def test_secrets_come_from_secrets_the_example_defines():
    for name in DEPLOYMENTS:
        container = _container(name)
        for variable, entry in _env(container).items():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in SECRETS[ref["name"]], f"{name}: {variable}"
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


@pytest.mark.parametrize("name", COMPONENTS)
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
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": DEPLOYMENTS[name]["kind"],
                                      "name": name}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert "replicas" not in DEPLOYMENTS[name]["spec"], "the HPA owns the replica count"
    pdb = _of_kind("PodDisruptionBudget")[name]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= (
        DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"].items())


@pytest.mark.parametrize("env", [{}, {"OPENAI_API_KEY": "sk-test", "GROQ_API_KEY": "gsk-test"}],
                         ids=["no provider keys", "some provider keys"])
@pytest.mark.parametrize("overlay", kustomize.OVERLAYS)
def test_router_config_passes_the_routers_own_validation(overlay, env):
    config = pytest.importorskip("switchboard_router.config", reason="the router is not in this tree")
    manifests = kustomize.Manifests.of(overlay)
    (config_map,) = [c for n, c in manifests.config_maps().items() if n.startswith("switchboard-router-config-")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in config_map["data"].items():
            (Path(tmp) / name).write_text(text)
            config.load(Path(tmp) / name, env)  # raises ConfigError naming the bad field


def test_router_journal_is_on_a_persistent_volume_of_its_own():
    router = DEPLOYMENTS["router"]
    assert router["kind"] == "StatefulSet" and router["spec"]["serviceName"] == "router"
    journal_dir = _env_values(_container("router"))["SWITCHBOARD_ROUTER_JOURNAL_DIR"]
    mount = next(m for m in _container("router")["volumeMounts"] if m["mountPath"] == journal_dir)
    claims = {c["metadata"]["name"]: c for c in router["spec"]["volumeClaimTemplates"]}
    assert mount["name"] in claims, "the journal must be a claim per replica, not an emptyDir"
    assert mount["name"] not in {v["name"] for v in router["spec"]["template"]["spec"]["volumes"]}
    assert claims[mount["name"]]["spec"]["accessModes"] == ["ReadWriteOnce"]
    # Scaled in and back out, router-N finds its journal again (and sends what it held).
    assert router["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"


def test_router_drains_usage_within_its_termination_grace():
    values = _env_values(_container("router"))
    spec = DEPLOYMENTS["router"]["spec"]["template"]["spec"]
    drain = float(values["SWITCHBOARD_ROUTER_SHUTDOWN_GRACE_SECONDS"]) + float(
        values["SWITCHBOARD_ROUTER_USAGE_DRAIN_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] >= _pre_stop_seconds(_container("router")) + drain


def test_the_usage_stream_is_made_by_deployment_with_three_replicas_and_a_retention_bound():
    spec = DEPLOYMENTS["billing"]["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert init["command"] == ["python", "-m", "switchboard_common.usage_stream"]
    assert init["image"] == _container("billing")["image"]
    values = _env_values(init)
    assert values["SWITCHBOARD_NATS_URL"].startswith("nats://")
    from switchboard_common.usage_stream import UsageStreamSettings

    env = {k: v for k, v in values.items() if k.startswith("SWITCHBOARD_USAGE_STREAM_")}
    settings = UsageStreamSettings(**{k.removeprefix("SWITCHBOARD_USAGE_STREAM_").lower(): v
                                      for k, v in env.items()})
    assert settings.replicas == 3
    assert 0 < settings.max_age_seconds <= 31 * 24 * 3600
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
