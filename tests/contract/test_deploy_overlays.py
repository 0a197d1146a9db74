"""Every overlay of deploy/k8s renders, passes Kubernetes' own schemas offline, and holds together.

`kubectl kustomize` renders each overlay (tests/contract/kustomize.py); kubernetes-validate checks
every document against the OpenAPI schemas of KUBERNETES_VERSION, strictly (an unknown or
misspelt field fails too). Then what a schema cannot see: each Secret a pod reads exists with that
key, probes and Services aim at ports the containers open, NetworkPolicies select real pods and let
exactly the callers through, autoscalers and disruption budgets point at their workload, and
Kubernetes waits out each service's drain.
"""

from __future__ import annotations

import copy
import re

import kubernetes_validate
import pytest
from switchboard_auth.settings import AuthSettings
from switchboard_billing.settings import BillingSettings
from switchboard_guardrails.settings import GuardrailsSettings
from switchboard_memory.settings import MemorySettings
from switchboard_router.settings import RouterSettings

from edge import render
from switchboard_common.settings import CommonSettings
from switchboard_common.usage_stream import UsageStreamSettings
from tests.contract import kustomize

# The oldest Kubernetes the manifests are written for: gRPC probes and the StatefulSet's
# persistentVolumeClaimRetentionPolicy are GA from 1.32 on.
KUBERNETES_VERSION = "1.32.0"
OVERLAYS = kustomize.OVERLAYS
SETTINGS = {"router": RouterSettings, "auth": AuthSettings, "billing": BillingSettings,
            "guardrails": GuardrailsSettings, "memory": MemorySettings}
GRPC_PORTS = {name: cls.model_fields["grpc_port"].default for name, cls in SETTINGS.items()}
SECRET_LOOKING = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL")


def _manifests(overlay: str) -> kustomize.Manifests:
    return kustomize.Manifests.of(overlay)


def _id(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _validation_errors(doc: dict) -> list[str]:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{_id(doc)} at {'.'.join(map(str, exc.path)) or '/'}: {exc.message}"]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_passes_the_kubernetes_schema(overlay):
    docs = _manifests(overlay).objects
    assert len(docs) > 30, f"{overlay} rendered only {[_id(d) for d in docs]}"
    assert [e for doc in docs for e in _validation_errors(doc)] == []


def test_the_schema_check_catches_a_misspelt_field_and_a_wrong_type():
    # Guards the check above against passing everything: strict mode must refuse both.
    deployment = copy.deepcopy(_manifests("production").workloads["auth"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 50052}}
    assert _validation_errors(deployment)
    deployment = copy.deepcopy(_manifests("production").workloads["auth"])
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "thirty"
    assert _validation_errors(deployment)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_namespaced_into_the_overlays_namespace(overlay):
    manifests = _manifests(overlay)
    (namespace,) = manifests.of_kind("Namespace")
    assert namespace == {"dev": "switchboard-dev", "production": "switchboard"}[overlay]
    for doc in manifests.objects:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, _id(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_a_pod_reads_exists_with_that_key(overlay):
    manifests = _manifests(overlay)
    secrets = manifests.secrets()
    assert {"SWITCHBOARD_MASTER_KEY", "SWITCHBOARD_AUTH_HASH_SECRET"} <= {
        k for s in secrets.values() for k in s}
    read = 0
    for name in manifests.workloads:
        for container in kustomize.containers(manifests.pod_spec(name)):
            for variable, entry in kustomize.env(container).items():
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    read += 1
                    assert ref["name"] in secrets, f"{name}: {variable} reads a Secret no one makes"
                    assert ref["key"] in secrets[ref["name"]], f"{name}: {variable}: no key {ref['key']}"
                elif SECRET_LOOKING.search(variable) and "value" in entry:
                    pytest.fail(f"{name}: {variable} is a literal, not from a Secret")
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    ref = source["secretRef"]
                    # Optional (the provider keys: a gateway may use only providers that need none),
                    # but then documented, so an operator knows to make it.
                    known = {**secrets, **kustomize.example_secrets()} if ref.get("optional") else secrets
                    assert ref["name"] in known, f"{name}: envFrom {ref['name']}"
    assert read >= 10


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_config_map_and_volume_a_pod_uses_exists(overlay):
    manifests = _manifests(overlay)
    config_maps = manifests.config_maps()
    for name, workload in manifests.workloads.items():
        spec = manifests.pod_spec(name)
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, f"{name}: volume {volume['name']}"
        for container in kustomize.containers(spec):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, f"{name}: envFrom"
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes.keys() | claims, f"{name}/{container['name']}: {mount['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_in_a_config_map(overlay):
    manifests = _manifests(overlay)
    values = {v for s in manifests.secrets().values() for v in s.values() if len(v) >= 8}
    for name, config_map in manifests.config_maps().items():
        for key, value in config_map.get("data", {}).items():
            assert not SECRET_LOOKING.search(key), f"{name}: {key} looks like a secret"
            assert not any(v in value for v in values), f"{name}: {key} holds a Secret's value"


def _port_numbers(container: dict) -> dict[str | int, int]:
    """A container's ports by name and by number (probes and Services may use either)."""
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[port["containerPort"]] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_port_and_health_service_each_container_serves(overlay):
    manifests = _manifests(overlay)
    for name in manifests.workloads:
        container = manifests.container(name)
        ports = _port_numbers(container)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            handler = container[probe].get("grpc") or container[probe].get("httpGet")
            assert handler, f"{name} {probe}: neither gRPC nor HTTP"
            assert handler["port"] in ports, f"{name} {probe} probes {handler['port']}, not a container port"
        if name in SETTINGS:
            # The gRPC health service each service registers (switchboard_common.grpc_server):
            # "" for liveness, its proto service's full name for readiness, on its gRPC port.
            assert ports[container["readinessProbe"]["grpc"]["port"]] == GRPC_PORTS[name]
            assert container["readinessProbe"]["grpc"]["service"] == render.SERVICES[name]
            assert container["livenessProbe"]["grpc"].get("service", "") == ""
            assert manifests.env_values(container)[f"SWITCHBOARD_{name.upper()}_GRPC_PORT"] == str(GRPC_PORTS[name])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_their_pods_and_target_open_ports(overlay):
    manifests = _manifests(overlay)
    services = manifests.of_kind("Service")
    assert set(services) == set(manifests.workloads)
    for name, service in services.items():
        assert service["spec"]["selector"].items() <= manifests.pod_labels(name).items()
        others = [w for w in manifests.workloads if w != name
                  and service["spec"]["selector"].items() <= manifests.pod_labels(w).items()]
        assert others == [], f"Service {name} also selects {others}"
        ports = _port_numbers(manifests.container(name))
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: {port['targetPort']} is no container port"


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def _callers(name: str) -> set[str]:
    """Who calls a service: the edge (admin routes, and the router's API), the router (every
    internal RPC), and each service whose settings name a target of it (billing, guardrails and
    memory ask auth about keys: their auth_target)."""
    if name == "router":
        return {"edge"}
    return {"edge", "router"} | {caller for caller, cls in SETTINGS.items()
                                 if caller != name and f"{name}_target" in cls.model_fields}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_exactly_the_callers_reach_each_service(overlay):
    manifests = _manifests(overlay)
    policies = manifests.of_kind("NetworkPolicy")
    pods = {name: manifests.pod_labels(name) for name in manifests.workloads}
    # Default deny: a pod no other policy admits is unreachable.
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies.values())
    for policy_name, policy in policies.items():
        selected = {n for n, labels in pods.items() if _selects(policy["spec"]["podSelector"], labels)}
        assert selected, f"NetworkPolicy {policy_name} selects no pod"
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                assert {n for n, labels in pods.items() if _selects(peer["podSelector"], labels)}, (
                    f"NetworkPolicy {policy_name}: a peer selects no pod")
            for port in rule.get("ports", []):
                for pod in selected:
                    assert port["port"] in _port_numbers(manifests.container(pod)), (
                        f"NetworkPolicy {policy_name} opens {port['port']}, which {pod} does not listen on")

    def admitted(target: str, port: int) -> set[str] | None:
        """Who may reach target:port (None: anyone)."""
        callers: set[str] = set()
        for policy in policies.values():
            if not _selects(policy["spec"]["podSelector"], pods[target]):
                continue
            for rule in policy["spec"].get("ingress", []):
                if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                    continue
                if "from" not in rule:
                    return None
                callers |= {n for peer in rule["from"] for n, labels in pods.items()
                            if _selects(peer["podSelector"], labels)}
        return callers

    for name, port in GRPC_PORTS.items():
        assert admitted(name, port) == _callers(name), f"who may call {name}"
    assert admitted("edge", 8080) is None, "the edge is the entry point"
    assert admitted("dashboard", 8070) == {"edge"}, "only the edge reaches the dashboard"
    # And the dashboard reaches only the edge (and DNS to find it): the admin API, as a client.
    (egress,) = [p["spec"] for p in policies.values() if "Egress" in p["spec"].get("policyTypes", [])]
    assert _selects(egress["podSelector"], pods["dashboard"])
    reached = {n for rule in egress["egress"] for peer in rule["to"] if "namespaceSelector" not in peer
               for n, labels in pods.items() if _selects(peer["podSelector"], labels)}
    assert reached == {"edge"}
    dns = [rule for rule in egress["egress"] if any("namespaceSelector" in peer for peer in rule["to"])]
    assert [{p["port"] for p in rule["ports"]} for rule in dns] == [{53}]
    for name in SETTINGS:
        assert admitted(name, 9090) is None, f"{name}'s metrics port is for Prometheus, wherever it runs"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_autoscales_and_keeps_a_disruption_budget(overlay):
    manifests = _manifests(overlay)
    autoscalers = manifests.of_kind("HorizontalPodAutoscaler")
    budgets = manifests.of_kind("PodDisruptionBudget")
    for name, workload in manifests.workloads.items():
        (hpa,) = [h["spec"] for h in autoscalers.values() if h["spec"]["scaleTargetRef"]["name"] == name]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": workload["kind"], "name": name}
        assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
        assert "replicas" not in workload["spec"], f"{name}: the HPA owns the replica count"
        assert "requests" in manifests.container(name)["resources"], f"{name}: the HPA scales on requests"
        (pdb,) = [b["spec"] for b in budgets.values() if _selects(b["spec"]["selector"], manifests.pod_labels(name))]
        assert pdb["maxUnavailable"] == 1
        if overlay == "production":
            assert hpa["minReplicas"] >= 2, f"{name}: one replica cannot survive a node drain"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_outlasts_prestop_lame_duck_and_drain(overlay):
    manifests = _manifests(overlay)
    for name in SETTINGS:
        container = manifests.container(name)
        values = manifests.env_values(container)
        prestop = container["lifecycle"]["preStop"]["exec"]["command"]
        assert prestop[0] == "sleep"
        lame_duck = float(values.get(f"SWITCHBOARD_{name.upper()}_SHUTDOWN_LAME_DUCK_SECONDS",
                                     values.get("SWITCHBOARD_SHUTDOWN_LAME_DUCK_SECONDS",
                                                CommonSettings().shutdown_lame_duck_seconds)))
        grace = float(values[f"SWITCHBOARD_{name.upper()}_SHUTDOWN_GRACE_SECONDS"])
        usage_drain = float(values.get("SWITCHBOARD_ROUTER_USAGE_DRAIN_SECONDS", 0)) if name == "router" else 0
        needed = float(prestop[1]) + lame_duck + grace + usage_drain + 5  # and closing the clients
        assert manifests.pod_spec(name)["terminationGracePeriodSeconds"] >= needed, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_unprivileged_on_a_read_only_root(overlay):
    manifests = _manifests(overlay)
    for name in manifests.workloads:
        spec = manifests.pod_spec(name)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
        assert spec["automountServiceAccountToken"] is False
        for container in kustomize.containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, f"{name}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_usage_stream_is_made_with_a_retention_bound_and_the_overlays_replicas(overlay):
    manifests = _manifests(overlay)
    (init,) = manifests.pod_spec("billing")["initContainers"]
    assert init["command"] == ["python", "-m", "switchboard_common.usage_stream"]
    values = {k.removeprefix("SWITCHBOARD_USAGE_STREAM_").lower(): v for k, v in manifests.env_values(init).items()
              if k.startswith("SWITCHBOARD_USAGE_STREAM_")}
    settings = UsageStreamSettings(**values)
    # Production's NATS has three nodes, so the stream survives losing one; dev's has one.
    assert settings.replicas == {"dev": 1, "production": 3}[overlay]
    assert 0 < settings.max_age_seconds <= 31 * 24 * 3600


def test_the_dev_overlay_runs_the_same_objects_as_production():
    def objects(manifests: kustomize.Manifests) -> set[str]:
        # Generated names carry a content hash; the Namespace is named per overlay.
        return {re.sub(r"-[a-z0-9]{10}$", "", _id(d)) for d in manifests.objects
                if d["kind"] not in ("Namespace", "Secret")}

    dev, production = _manifests("dev"), _manifests("production")
    assert objects(dev) == objects(production)
    assert set(dev.of_kind("Secret")) and {re.sub(r"-[a-z0-9]{10}$", "", n) for n in dev.of_kind("Secret")} == {
        "switchboard-secrets"}, "dev generates its Secrets (provider keys: none)"
    assert not production.of_kind("Secret"), "production's Secrets are made outside the repository"
    for name in production.workloads:
        assert dev.container(name)["image"].endswith(":dev")
