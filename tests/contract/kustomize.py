"""deploy/k8s's overlays as `kubectl kustomize` renders them: what `kubectl apply -k` would send.

The manifest tests read these documents, not the bases' files, so they check what a cluster gets
(names with kustomize's hashes, the overlay's patches, the namespace) rather than the sources.
"""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.contract import protoset

K8S = protoset.REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
EXAMPLE_SECRETS = K8S / "secrets.example.yaml"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@functools.cache
def render(overlay: str) -> tuple[dict, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not installed: the deploy tests render deploy/k8s with `kubectl kustomize`")
    result = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize deploy/k8s/overlays/{overlay} failed:\n{result.stderr}")
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


@dataclass(frozen=True)
class Manifests:
    """One overlay's rendered objects, with the look-ups the tests share."""

    overlay: str
    objects: tuple[dict, ...]

    @classmethod
    def of(cls, overlay: str) -> Manifests:
        return cls(overlay, render(overlay))

    def of_kind(self, kind: str) -> dict[str, dict]:
        return {o["metadata"]["name"]: o for o in self.objects if o["kind"] == kind}

    @functools.cached_property
    def workloads(self) -> dict[str, dict]:
        """Deployments and the router's StatefulSet, by name."""
        return {n: o for kind in WORKLOAD_KINDS for n, o in self.of_kind(kind).items()}

    def pod_spec(self, name: str) -> dict:
        return self.workloads[name]["spec"]["template"]["spec"]

    def pod_labels(self, name: str) -> dict[str, str]:
        return self.workloads[name]["spec"]["template"]["metadata"]["labels"]

    def container(self, name: str) -> dict:
        (container,) = self.pod_spec(name)["containers"]
        return container

    def config_maps(self) -> dict[str, dict]:
        return self.of_kind("ConfigMap")

    def env_values(self, container: dict) -> dict[str, str]:
        """What the container sees: the ConfigMaps it loads, then its own `value` entries."""
        values: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                values.update(self.config_maps()[source["configMapRef"]["name"]]["data"])
        values.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
        return values

    def secrets(self) -> dict[str, dict[str, str]]:
        """The Secrets the pods may read, by name, with their keys: the ones this overlay makes,
        else (production: made outside the repository) the documented example's."""
        made = self.of_kind("Secret")
        if made:
            return {n: {**{k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()},
                        **s.get("stringData", {})} for n, s in made.items()}
        return example_secrets()


def example_secrets() -> dict[str, dict[str, str]]:
    """deploy/k8s/secrets.example.yaml: the Secrets an operator makes, with the keys pods read."""
    return {d["metadata"]["name"]: d["stringData"] for d in yaml.safe_load_all(EXAMPLE_SECRETS.read_text()) if d}


def env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def containers(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))
