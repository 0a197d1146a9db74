"""Builds the wheel with the stubs generated from the repository's proto/ (no generated code is
committed): `pip install ./clients/python` from a checkout, or `make proto` for a wheel in dist/."""

from __future__ import annotations

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROTO_ROOT = REPO / "proto"
# The one generator `make proto` uses too, run by path: this build environment has grpcio-tools
# but not Switchboard's own packages.
PROTOGEN = REPO / "services" / "common" / "src" / "switchboard_common" / "protogen.py"


class BuildWithStubs(build_py):
    def run(self) -> None:
        super().run()
        if not PROTOGEN.exists():
            raise SystemExit(f"{PROTOGEN} is missing: build the client from a Switchboard checkout")
        out = Path(self.build_lib)
        runpy.run_path(str(PROTOGEN))["generate"](PROTO_ROOT, out, descriptor_set=False)
        # PEP 561: the generated .pyi are the package's types.
        for package in {p.parent for p in (out / "switchboard").rglob("*_pb2.py")} | {out / "switchboard"}:
            (package / "py.typed").touch()


setup(cmdclass={"build_py": BuildWithStubs})
