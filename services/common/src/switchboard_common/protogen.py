"""Generate Python modules and Envoy's descriptor set from proto/ (what `make proto` runs)."""

from __future__ import annotations

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


def generate(proto_root: Path, out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    args = ["protoc", f"-I{proto_root}", *(f"-I{d}" for d in _include_dirs()),
            f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}",
            "--include_imports", "--include_source_info",
            f"--descriptor_set_out={out_dir / DESCRIPTOR_SET}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    proto_root, out_dir = (Path(a) for a in sys.argv[1:3])
    generate(proto_root, out_dir)
    print(f"generated {out_dir} from {proto_root}")


if __name__ == "__main__":
    main()
