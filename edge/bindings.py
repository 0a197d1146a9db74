"""The REST bindings (`google.api.http`) in the descriptor set, the one list the edge routes from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

_VERBS = ("get", "put", "post", "delete", "patch")
_HTTP: Any = annotations_pb2.http  # the extension; its stubs type it as a plain FieldDescriptor
_VARIABLE = re.compile(r"\{[a-z_][a-z0-9_.]*(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Binding:
    method: str  # HTTP method, upper case
    template: str  # path template, e.g. /v1/models/{model=**}
    service: str  # full gRPC service name

    @property
    def is_exact(self) -> bool:
        return "{" not in self.template

    def path_regex(self) -> str:
        """An RE2 regex for the paths the template matches (Envoy matches it against the whole
        path without its query string)."""
        parts, last = [], 0
        for var in _VARIABLE.finditer(self.template):
            parts.append(re.escape(self.template[last:var.start()]))
            parts.append(_segments_regex(var.group(1) or "*"))
            last = var.end()
        parts.append(re.escape(self.template[last:]))
        return "".join(parts)


# One character of a path variable as the client sent it: a plain one, an escaped ASCII byte, or
# escaped bytes that form a UTF-8 character. The transcoder unescapes the variable into a proto
# string, and a string that is not UTF-8 fails in the service (a 500); such a path is unknown here.
_CONT = "%[89ABab][0-9A-Fa-f]"
_UTF8_ESCAPES = "|".join([
    f"%[Cc][2-9A-Fa-f]{_CONT}", f"%[Dd][0-9A-Fa-f]{_CONT}",
    f"%[Ee]0%[ABab][0-9A-Fa-f]{_CONT}", f"%[Ee][1-9A-Ca-c]{_CONT}{_CONT}",
    f"%[Ee][Dd]%[89][0-9A-Fa-f]{_CONT}", f"%[Ee][EFef]{_CONT}{_CONT}",
    f"%[Ff]0%[9ABab][0-9A-Fa-f]{_CONT}{_CONT}", f"%[Ff][1-3]{_CONT}{_CONT}{_CONT}",
    f"%[Ff]4%8[0-9A-Fa-f]{_CONT}{_CONT}",
])
_SEGMENT = f"(?:[^/%]|%[0-7][0-9A-Fa-f]|{_UTF8_ESCAPES})+"
_SEGMENTS = f"(?:[^%]|%[0-7][0-9A-Fa-f]|{_UTF8_ESCAPES})+"


def _segments_regex(pattern: str) -> str:
    # google.api.http path syntax: `*` is one segment, `**` any number (at least one character).
    return "/".join(_SEGMENTS if seg == "**" else _SEGMENT if seg == "*" else re.escape(seg)
                    for seg in pattern.split("/"))


def load(descriptor_path: Path, services: set[str]) -> list[Binding]:
    """Every binding of the given services, in the order of the .proto files."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    found: list[Binding] = []
    for file in fds.file:
        for service in file.service:
            full_name = f"{file.package}.{service.name}"
            if full_name not in services:
                continue
            for method in service.method:
                if not method.options.HasExtension(_HTTP):
                    continue
                rule: http_pb2.HttpRule = method.options.Extensions[_HTTP]
                for one in (rule, *rule.additional_bindings):
                    verb = one.WhichOneof("pattern")
                    if verb in _VERBS:
                        found.append(Binding(verb.upper(), getattr(one, verb), full_name))
                    elif verb == "custom":
                        found.append(Binding(one.custom.kind.upper(), one.custom.path, full_name))
    return found
