"""The API snapshot: every message's fields and every service's RPCs, to catch breaking changes.

    python -m tests.contract.snapshot            # compare the protos with the snapshot
    python -m tests.contract.snapshot --write    # record the current protos (on purpose only)

Through the edge, proto field names are the REST API's JSON names, and field numbers are the wire
format of every gRPC client: removing, renumbering, renaming or retyping one breaks someone.
Additions are allowed (and should be recorded with --write so a later removal is caught).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from tests.contract import protoset

SNAPSHOT = Path(__file__).resolve().parent / "api_snapshot.json"
REFRESH = "python -m tests.contract.snapshot --write"


def _label(message: protoset.Message, field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.label == protoset.FDP.LABEL_REPEATED:
        entry = message.map_entries().get(protoset.strip(field.type_name))
        return "map" if entry is not None else "repeated"
    if field.proto3_optional:
        return "optional"
    if field.HasField("oneof_index"):
        return f"oneof {message.proto.oneof_decl[field.oneof_index].name}"
    return "singular"


def _type(message: protoset.Message, field: descriptor_pb2.FieldDescriptorProto) -> str:
    entry = message.map_entries().get(protoset.strip(field.type_name))
    if entry is not None:
        key, value = entry.field
        return f"map<{protoset.field_type(key)}, {protoset.field_type(value)}>"
    return protoset.field_type(field)


def describe(fds: descriptor_pb2.FileDescriptorSet) -> dict:
    """The parts of the Switchboard protos that clients depend on, as plain JSON-able data."""
    messages = {
        m.full_name: {f.name: {"number": f.number, "type": _type(m, f), "label": _label(m, f)}
                      for f in m.proto.field}
        for m in protoset.messages(fds)
    }
    enums = {name: {v.name: v.number for v in enum.value} for name, enum in protoset.enums(fds)}
    services: dict[str, dict] = {}
    for rpc in protoset.rpcs(fds):
        services.setdefault(rpc.service, {})[rpc.name] = {
            "input": rpc.input, "output": rpc.output,
            "client_streaming": rpc.method.client_streaming,
            "server_streaming": rpc.method.server_streaming,
            "http": sorted(" ".join(protoset.verb_and_path(r)) for r in rpc.http_rules()),
        }
    return {"messages": messages, "enums": enums, "services": services}


def _compare_named_numbers(kind: str, owner: str, old: dict[str, int], new: dict[str, int]) -> list[str]:
    """Fields or enum values: name -> number (fields carry more; `old[n]["number"]` is unpacked)."""
    problems = []
    new_by_number = {number: name for name, number in new.items()}
    for name, number in old.items():
        if name in new:
            if new[name] != number:
                problems.append(f"{kind} {owner}.{name} renumbered {number} -> {new[name]}")
        elif number in new_by_number:
            problems.append(f"{kind} {owner}.{name} renamed to {new_by_number[number]} (number {number})")
        else:
            problems.append(f"{kind} {owner}.{name} (number {number}) removed")
    return problems


def breaking_changes(old: dict, new: dict) -> list[str]:
    """Every change from `old` to `new` that breaks an existing client; additions are not listed."""
    problems: list[str] = []
    for name, fields in old["messages"].items():
        if name not in new["messages"]:
            problems.append(f"message {name} removed")
            continue
        now = new["messages"][name]
        problems += _compare_named_numbers("field", name, {f: s["number"] for f, s in fields.items()},
                                           {f: s["number"] for f, s in now.items()})
        for field, spec in fields.items():
            if field in now:
                for key in ("type", "label"):
                    if now[field][key] != spec[key]:
                        problems.append(f"field {name}.{field} {key} changed: {spec[key]} -> {now[field][key]}")
    for name, values in old["enums"].items():
        if name not in new["enums"]:
            problems.append(f"enum {name} removed")
        else:
            problems += _compare_named_numbers("enum value", name, values, new["enums"][name])
    for service, methods in old["services"].items():
        if service not in new["services"]:
            problems.append(f"service {service} removed")
            continue
        for rpc, spec in methods.items():
            now = new["services"][service].get(rpc)
            if now is None:
                problems.append(f"rpc {service}.{rpc} removed")
                continue
            for key in ("input", "output", "client_streaming", "server_streaming"):
                if now[key] != spec[key]:
                    problems.append(f"rpc {service}.{rpc} {key} changed: {spec[key]} -> {now[key]}")
            for binding in sorted(set(spec["http"]) - set(now["http"])):
                problems.append(f"rpc {service}.{rpc} lost its HTTP binding {binding}")
    return problems


def additions(old: dict, new: dict) -> list[str]:
    """What `new` has that `old` does not record (allowed, but worth recording)."""
    found = []
    for section in ("messages", "enums", "services"):
        for name, members in new[section].items():
            known = old[section].get(name)
            if known is None:
                found.append(f"{section[:-1]} {name}")
                continue
            found += [f"{name}.{member}" for member in members if member not in known]
            if section == "services":
                found += [f"{name}.{rpc} {b}" for rpc, spec in members.items() if rpc in known
                          for b in spec["http"] if b not in known[rpc]["http"]]
    return found


def read(path: Path = SNAPSHOT) -> dict:
    return json.loads(path.read_text())


def _compact(value) -> str:
    return json.dumps(value, sort_keys=True)


def dumps(snapshot: dict) -> str:
    """Sorted JSON with one line per field, enum value or RPC, so a change reads as a one-line diff."""
    sections = []
    for section in sorted(snapshot):
        owners = []
        for owner in sorted(snapshot[section]):
            members = snapshot[section][owner]
            lines = [f"   {_compact(m)}: {_compact(members[m])}" for m in sorted(members)]
            body = "{\n" + ",\n".join(lines) + "\n  }" if lines else "{}"
            owners.append(f"  {_compact(owner)}: {body}")
        sections.append(f" {_compact(section)}: {{\n" + ",\n".join(owners) + "\n }")
    return "{\n" + ",\n".join(sections) + "\n}\n"


def write(snapshot: dict, path: Path = SNAPSHOT) -> None:
    text = dumps(snapshot)
    if json.loads(text) != snapshot:  # the layout is for humans; the data must survive it
        raise AssertionError("snapshot layout lost data")
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="record the current protos as the snapshot")
    args = parser.parse_args(argv)
    if reason := protoset.stale_reason():
        print(reason, file=sys.stderr)
        return 2
    current = describe(protoset.load())
    if args.write:
        write(current)
        print(f"wrote {SNAPSHOT.relative_to(protoset.REPO)}")
        return 0
    problems = breaking_changes(read(), current)
    for problem in problems:
        print(f"BREAKING: {problem}")
    for addition in additions(read(), current):
        print(f"added (not recorded yet): {addition}")
    if problems:
        print(f"\nIf these changes are on purpose, record them: {REFRESH}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
