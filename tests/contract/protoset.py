"""The generated descriptor set (`make proto`) and small walks over its Switchboard files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto" / "switchboard"
DESCRIPTOR_SET = REPO / "proto" / "gen" / "switchboard.pb"
HTTP_BODY = "google.api.HttpBody"
EMPTY = "google.protobuf.Empty"
_HTTP_VERBS = ("get", "put", "post", "delete", "patch")

FDP = descriptor_pb2.FieldDescriptorProto


def stale_reason(path: Path = DESCRIPTOR_SET) -> str | None:
    """Why the descriptor set cannot be trusted (missing, or older than a .proto), or None."""
    if not path.exists():
        return f"{path} is missing: run `make proto`"
    built = path.stat().st_mtime
    newer = [p for p in PROTO_ROOT.rglob("*.proto") if p.stat().st_mtime > built]
    if newer:
        return f"{path} is older than {', '.join(str(p.relative_to(REPO)) for p in newer)}: run `make proto`"
    return None


def load(path: Path = DESCRIPTOR_SET) -> descriptor_pb2.FileDescriptorSet:
    # annotations_pb2 is imported above so google.api.http parses as a known extension.
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def switchboard_files(fds: descriptor_pb2.FileDescriptorSet) -> list[descriptor_pb2.FileDescriptorProto]:
    return [f for f in fds.file if f.package.startswith("switchboard.")]


def strip(type_name: str) -> str:
    return type_name.lstrip(".")


@dataclass(frozen=True)
class Message:
    full_name: str
    proto: descriptor_pb2.DescriptorProto
    file: descriptor_pb2.FileDescriptorProto
    location_path: tuple[int, ...]  # for comments in source_code_info

    def map_entries(self) -> dict[str, descriptor_pb2.DescriptorProto]:
        return {f"{self.full_name}.{n.name}": n for n in self.proto.nested_type if n.options.map_entry}


def messages(fds: descriptor_pb2.FileDescriptorSet) -> Iterator[Message]:
    """Every message of the Switchboard files, nested ones included, map entries excluded."""
    def walk(file, protos, prefix, path):
        for i, proto in enumerate(protos):
            if proto.options.map_entry:
                continue
            here = (*path, i)
            yield Message(f"{prefix}.{proto.name}", proto, file, here)
            yield from walk(file, proto.nested_type, f"{prefix}.{proto.name}", (*here, 3))
    for file in switchboard_files(fds):
        yield from walk(file, file.message_type, file.package, (4,))


def enums(fds: descriptor_pb2.FileDescriptorSet) -> Iterator[tuple[str, descriptor_pb2.EnumDescriptorProto]]:
    for file in switchboard_files(fds):
        for enum in file.enum_type:
            yield f"{file.package}.{enum.name}", enum
    for message in messages(fds):
        for enum in message.proto.enum_type:
            yield f"{message.full_name}.{enum.name}", enum


@dataclass(frozen=True)
class Rpc:
    service: str  # full name
    method: descriptor_pb2.MethodDescriptorProto
    package: str

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def full_name(self) -> str:
        return f"{self.service}.{self.method.name}"

    @property
    def input(self) -> str:
        return strip(self.method.input_type)

    @property
    def output(self) -> str:
        return strip(self.method.output_type)

    def http_rules(self) -> list[http_pb2.HttpRule]:
        """The google.api.http rule and its additional bindings; empty when the RPC has none."""
        if not self.method.options.HasExtension(annotations_pb2.http):
            return []
        rule = self.method.options.Extensions[annotations_pb2.http]
        return [rule, *rule.additional_bindings]


def rpcs(fds: descriptor_pb2.FileDescriptorSet) -> Iterator[Rpc]:
    for file in switchboard_files(fds):
        for service in file.service:
            for method in service.method:
                yield Rpc(f"{file.package}.{service.name}", method, file.package)


def verb_and_path(rule: http_pb2.HttpRule) -> tuple[str, str]:
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    assert pattern in _HTTP_VERBS, f"unexpected HttpRule pattern {pattern!r}"
    return pattern.upper(), getattr(rule, pattern)


_SEGMENT_MATCH = re.compile(r"\{([a-z_][a-z0-9_.]*)=[^}]*\}")


def normalize(path: str) -> str:
    """`/v1/models/{model=**}` -> `/v1/models/{model}`: the variable, not its segment pattern."""
    return _SEGMENT_MATCH.sub(r"{\1}", path)


def path_variables(path: str) -> list[str]:
    return re.findall(r"\{([a-z_][a-z0-9_.]*)", path)


def field_type(field: descriptor_pb2.FieldDescriptorProto) -> str:
    """`string`, `int64`, ... for scalars; the full name for messages and enums."""
    if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
        return strip(field.type_name)
    return FDP.Type.Name(field.type).removeprefix("TYPE_").lower()


def comments(file: descriptor_pb2.FileDescriptorProto, path: tuple[int, ...]) -> str:
    """Leading and trailing comments of the element at `path` (needs --include_source_info)."""
    for location in file.source_code_info.location:
        if tuple(location.path) == path:
            return f"{location.leading_comments}\n{location.trailing_comments}"
    return ""
