"""Generate Python modules, typed stubs and Envoy's descriptor set from proto/ (what `make proto` runs).

    python -m switchboard_common.protogen PROTO_ROOT OUT_DIR [--no-descriptor-set]

Stubs come from mypy-protobuf (`_pb2.pyi` and `_pb2_grpc.pyi`, so mypy checks calls on the
generated stubs too); where its plugin is not installed (a slim image) protoc's own `--pyi_out`
writes the message stubs only. This module imports nothing of Switchboard: the Python client's
build (`clients/python`) runs it by path in its isolated build environment.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

DESCRIPTOR_SET = "switchboard.pb"


def _include_dirs() -> list[str]:
    # google/api and google/rpc come with googleapis-common-protos, google/protobuf with grpc_tools.
    import google.api

    googleapis = Path(google.api.__path__[0]).parent.parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [str(googleapis), str(well_known)]


def _plugin(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    return str(beside_python) if beside_python.exists() else shutil.which(name)


def _stub_args(out_dir: Path) -> list[str]:
    mypy, mypy_grpc = _plugin("protoc-gen-mypy"), _plugin("protoc-gen-mypy_grpc")
    if mypy and mypy_grpc:
        return [f"--plugin=protoc-gen-mypy={mypy}", f"--plugin=protoc-gen-mypy_grpc={mypy_grpc}",
                f"--mypy_out=quiet:{out_dir}", f"--mypy_grpc_out=quiet:{out_dir}"]
    print("protogen: mypy-protobuf is not installed; writing message stubs only (--pyi_out)",
          file=sys.stderr)
    return [f"--pyi_out={out_dir}"]


def generate(proto_root: Path, out_dir: Path, *, descriptor_set: bool = True) -> None:
    """Replace the generated packages in `out_dir` (and nothing else there) with fresh ones."""
    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for top in {Path(p).parts[0] for p in protos}:
        shutil.rmtree(out_dir / top, ignore_errors=True)
    args = ["protoc", f"-I{proto_root}", *(f"-I{d}" for d in _include_dirs()),
            f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *_stub_args(out_dir)]
    if descriptor_set:
        args += ["--include_imports", "--include_source_info",
                 f"--descriptor_set_out={out_dir / DESCRIPTOR_SET}"]
    if protoc.main([*args, *protos]) != 0:
        raise SystemExit("protoc failed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("proto_root", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--no-descriptor-set", action="store_true", help="skip Envoy's descriptor set")
    args = parser.parse_args(argv)
    generate(args.proto_root, args.out_dir, descriptor_set=not args.no_descriptor_set)
    print(f"generated {args.out_dir} from {args.proto_root}")


if __name__ == "__main__":
    main()
