"""Whole answers: a model call without "stream": true goes to its RPC's unary twin, so the router
answers in one gRPC batch (headers as trailers, the message, the status) and the client gets one
Content-Length response instead of a chunked relay of a server stream (edge/README.md, "Whole
answers").

An RPC `<Name>Whole` of a service is the twin of `<Name>`; it has no REST binding of its own.
The edge decides by the body: `json_to_metadata` lifts its "stream" field into dynamic metadata
(and clears the route cache); the streamed route matches on it, and every other body (no
"stream", false, not a boolean, not JSON) takes the whole route, whose transcoder reads a copy
of the descriptors where the twin holds `<Name>`'s bindings, and where a Lua filter moves the
router's trailers into the response headers (the transcoder copies only grpc-status and
grpc-message). The router answers a malformed body there with the same 400 as `<Name>` does.
"""

from __future__ import annotations

import base64
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

STREAM_FIELD = "switchboard.stream_field"  # json_to_metadata: the body's "stream" into metadata
WHOLE_HEADERS = "switchboard.whole_headers"  # Lua (whole_headers.lua): trailers into headers
NAMESPACE = "switchboard"  # the dynamic metadata's namespace, key "stream"
SUFFIX = "Whole"
# The largest body the edge reads for its "stream" (below the 1 MiB connection buffer that
# holds it meanwhile): chat bodies are mostly far smaller; a larger one is answered as before.
MAX_READ_BYTES = 64 * 1024

_HTTP: Any = annotations_pb2.http
_FILTER_CONFIG = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
_LUA_SOURCE = "whole_headers"
_STREAM_RULES = {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.json_to_metadata.v3.JsonToMetadata",
    "request_rules": {
        "rules": [{"selectors": [{"key": "stream"}],
                   "on_present": {"metadata_namespace": NAMESPACE, "key": "stream"}}],
        # The router reads the body whatever its declared type (curl -d says form data).
        "allow_empty_content_type": True,
        "allow_content_types_regex": {"regex": ".*"}}}


def filters(lua_path: str) -> list[dict]:
    """The two filters, before the transcoder; each runs only on the routes that enable it."""
    return [
        {"name": STREAM_FIELD, "disabled": True, "typed_config": _STREAM_RULES},
        {"name": WHOLE_HEADERS, "disabled": True, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "source_codes": {_LUA_SOURCE: {"filename": lua_path}}}},
    ]


def twinned(descriptor: bytes, services: set[str]) -> tuple[bytes, set[str]]:
    """The descriptor set with each twin given its RPC's bindings (and that RPC none), for the
    whole route's transcoder; and the names of the RPCs that have a twin."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor)
    names: set[str] = set()
    kept = _serving(fds, services)
    for file in kept:
        for service in file.service:
            if f"{file.package}.{service.name}" not in services:
                continue
            methods = {m.name: m for m in service.method}
            for name, method in methods.items():
                twin = methods.get(name + SUFFIX)
                if twin is None or not method.options.HasExtension(_HTTP):
                    continue
                twin.options.Extensions[_HTTP].CopyFrom(method.options.Extensions[_HTTP])
                method.options.ClearExtension(_HTTP)
                names.add(name)
    return descriptor_pb2.FileDescriptorSet(file=kept).SerializeToString(), names


def _serving(fds: descriptor_pb2.FileDescriptorSet,
             services: set[str]) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files that define `services` and those they import: all that route's transcoder needs
    (the config carries them inline, once per route)."""
    by_name = {f.name: f for f in fds.file}
    wanted = [f.name for f in fds.file if any(f"{f.package}.{s.name}" in services for s in f.service)]
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name not in seen:
            seen.add(name)
            wanted.extend(by_name[name].dependency)
    return [f for f in fds.file if f.name in seen]  # in the set's order: imports first


def transcoder(base: dict, descriptor: bytes, services: set[str]) -> dict:
    """The whole route's transcoder: `base` reading the twinned descriptor set of `services`."""
    config = {k: v for k, v in base.items() if k != "proto_descriptor"}
    return {**config, "proto_descriptor_bin": base64.b64encode(descriptor).decode(),
            "services": sorted(services)}


def routes(match: dict, route: dict, whole_transcoder: dict, transcoder_name: str) -> list[dict]:
    """A bound path whose RPC has a twin: a body of unknown or large size to the RPC as it is
    (json_to_metadata would parse all of it in Envoy's worker, up to 32 MiB, and buffer it);
    else "stream": true to the RPC, any other body to the twin."""
    as_it_is = [{"match": {**match, "headers": [*match["headers"], size]}, "route": route}
                for size in ({"name": "content-length", "present_match": False},
                             {"name": "content-length", "range_match": {
                                 "start": MAX_READ_BYTES + 1, "end": 2**63 - 1}})]
    stream_field = _enabled(_STREAM_RULES)
    streamed = {"match": {**match, "dynamic_metadata": [{
                    "filter": NAMESPACE, "path": [{"key": "stream"}], "value": {"bool_match": True}}]},
                "route": route, "typed_per_filter_config": {STREAM_FIELD: stream_field}}
    lua = _enabled({"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                    "name": _LUA_SOURCE})
    whole = {"match": match, "route": route, "typed_per_filter_config": {
        STREAM_FIELD: stream_field, WHOLE_HEADERS: lua, transcoder_name: whole_transcoder}}
    return [*as_it_is, streamed, whole]


def _enabled(config: dict) -> dict:
    return {"@type": _FILTER_CONFIG, "config": config}
