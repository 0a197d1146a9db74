"""The Python client package as a user installs it: the wheel `make proto` builds, installed with
pip into a folder of its own and imported with nothing of this repository on the path, calls the
running stack over gRPC (sync and async); what its code imports is what it declares."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.e2e.conftest import REPO

CLIENT = REPO / "clients" / "python"

SCRIPT = r"""
import asyncio, json, sys
import switchboard.gateway.v1.gateway_pb2 as gateway_pb2
import switchboard_client
from switchboard_client import AsyncSwitchboard, Switchboard, SwitchboardError

target, router, key = sys.argv[1:4]
hello = [{"role": "user", "content": "hello client"}]
out = {"files": [switchboard_client.__file__, gateway_pb2.__file__]}
with Switchboard(target, api_key=key) as client:
    reply = client.chat.completions.create(model="switchboard-local", messages=hello)
    out["sync"] = [type(reply).__name__, reply.choices[0].message.content, reply.usage.total_tokens]
    out["sync_stream"] = "".join(c.choices[0].delta.content for c in client.chat.completions.create(
        model="switchboard-local", messages=hello, stream=True) if c.choices)
    out["models"] = [m["id"] for m in client.models.list()]
    out["embedding"] = len(client.embeddings.create(model="switchboard-local-embed", input="hi")["data"])
try:  # straight to the router: the edge's shaping of native gRPC errors is issue 11's
    Switchboard(router, api_key="sk-not-a-key").chat.completions.create(model="switchboard-local",
                                                                       messages=hello)
except SwitchboardError as exc:
    out["error"] = [exc.status_code, exc.type, exc.code]

async def main():
    async with AsyncSwitchboard(target, api_key=key) as client:
        reply = await client.chat.completions.create(model="switchboard-local", messages=hello)
        chunks = [c async for c in await client.chat.completions.create(
            model="switchboard-local", messages=hello, stream=True)]
        out["async"] = reply.choices[0].message.content
        out["async_stream"] = "".join(c.choices[0].delta.content for c in chunks if c.choices)
        out["async_models"] = len(await client.models.list())

asyncio.run(main())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The client wheel (built by `make proto`; built here when missing) pip-installed alone."""
    wheels = sorted((CLIENT / "dist").glob("switchboard_client-*.whl"))
    if not wheels:
        out = tmp_path_factory.mktemp("wheel")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(out), str(CLIENT)], check=True, timeout=300)
        wheels = sorted(out.glob("*.whl"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                    "--target", str(target), str(wheels[-1])], check=True, timeout=300)
    return target


def _run(installed: Path, *args: str) -> dict:
    # -S: no site, so the dev .pth (proto/gen, the services) is not read. The dependencies come
    # from this environment's site-packages, the client and its stubs only from `installed`.
    deps = sysconfig.get_paths()["purelib"]
    result = subprocess.run([sys.executable, "-S", "-c", SCRIPT, *args], capture_output=True, text=True,
                            env={"PYTHONPATH": f"{installed}:{deps}"}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _declared_closure(installed: Path) -> set[str]:
    """The client's declared dependencies and theirs, as normalized distribution names."""
    client = metadata.PathDistribution(next(installed.glob("switchboard_client-*.dist-info")))
    todo = [Requirement(r) for r in client.requires or []]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = metadata.distribution(req.name).metadata["Name"].lower().replace("_", "-")
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.requires(req.name) or []]
    return seen


def _imported_by(installed: Path) -> set[str]:
    """Top-level modules the installed code (client and generated stubs) imports."""
    names: set[str] = set()
    for source in installed.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"switchboard", "switchboard_client"}


def test_the_installed_client_calls_the_stack_sync_and_async(stack, installed):
    out = _run(installed, f"{stack.config.host}:{stack.config.edge_port}", stack.config.target("router"),
               stack.master_key)
    assert all(f.startswith(str(installed)) for f in out["files"]), out["files"]
    kind, content, tokens = out["sync"]
    assert kind == "ChatCompletion" and "hello client" in content and tokens > 0
    assert "hello client" in out["sync_stream"] and "hello client" in out["async_stream"]
    assert out["async"] == content
    assert "switchboard-local" in out["models"] and out["async_models"] == len(out["models"])
    assert out["embedding"] == 1
    assert out["error"] == [401, "authentication_error", "invalid_api_key"]


def test_what_the_client_imports_it_declares(installed):
    declared = _declared_closure(installed)
    owners = metadata.packages_distributions()
    imported = _imported_by(installed)
    assert {"grpc", "google"} <= imported
    undeclared = {m for m in imported
                  if not {d.lower().replace("_", "-") for d in owners.get(m, [m])} & declared}
    assert undeclared == set(), f"imported but not declared: {undeclared} (declared: {declared})"
    assert {"grpcio", "protobuf", "googleapis-common-protos"} <= declared
