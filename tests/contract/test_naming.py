"""The protos follow the naming rules (STYLE.md, AIP): services, RPCs, messages, enums, units.

Where a proto breaks a rule today, the case is marked xfail(strict=True) with the fix in its reason,
so fixing the proto turns it into an unexpected pass that asks for the mark to be removed.
"""

from __future__ import annotations

import re

import pytest

from tests.contract import protoset

FDS = protoset.load() if protoset.stale_reason() is None else None  # collected before fixtures run
RPCS = list(protoset.rpcs(FDS)) if FDS else []
MESSAGES = list(protoset.messages(FDS)) if FDS else []

# Verbs an RPC name may start with; a new one is fine when it is a verb.
VERBS = ("Get", "List", "Create", "Update", "Delete", "Revoke", "Set", "Lease", "Return", "Check",
         "Build", "Append", "Add", "Query", "Stream", "Batch", "Search", "Export", "Rotate", "Cancel",
         "Validate", "Count", "Watch", "Authorize")
VERB_NOUN = re.compile(rf"^({'|'.join(VERBS)})((?:[A-Z][a-z0-9]*)+)$")

# Documented exceptions (gateway.proto's service comment, DESIGN.md "One chat request"):
# the OpenAI routes are named after OpenAI's resources and take and return google.api.HttpBody ...
OPENAI_ROUTES = {"ChatCompletions", "Completions", "Embeddings", "Moderations"}
# ... and the typed twins of ChatCompletions take the route's own body, ChatCompletionRequest, so
# both twins accept exactly the JSON the route does, and stream OpenAI's chunk shape.
TYPED_TWINS = {"CreateChatCompletion", "StreamChatCompletion"}
GATEWAY = "switchboard.gateway.v1.GatewayService"

# (rule, rpc or field) -> what to change in the proto. Remove an entry when the proto is fixed.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}
# AuthService.Authorize is the admission check named in DESIGN.md; its noun is the service's own.
VERB_ONLY = {"switchboard.auth.v1.AuthService.Authorize"}


def _cases(rule: str, items, key=lambda item: item.full_name):
    params = []
    for item in items:
        name = key(item)
        reason = KNOWN_VIOLATIONS.get((rule, name))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(item, id=name, marks=marks))
    return params


def test_descriptor_set_is_fresh_and_complete(fds):
    files = {f.name for f in protoset.switchboard_files(fds)}
    on_disk = {str(p.relative_to(protoset.PROTO_ROOT.parent)) for p in protoset.PROTO_ROOT.rglob("*.proto")}
    assert files == on_disk
    assert FDS is not None


def test_packages_are_switchboard_service_v1(fds):
    for file in protoset.switchboard_files(fds):
        assert re.fullmatch(r"switchboard\.[a-z]+\.v[1-9][0-9]*", file.package), file.name
        # The import path of generated code equals the package (STYLE.md), so the folder must too.
        assert file.name.rsplit("/", 1)[0] == file.package.replace(".", "/"), file.name


def test_service_names_end_in_service(fds):
    services = [s.name for f in protoset.switchboard_files(fds) for s in f.service]
    assert services, "no services found"
    assert [s for s in services if not re.fullmatch(r"[A-Z][A-Za-z0-9]*Service", s)] == []


def test_documented_exceptions_are_what_they_claim():
    by_name = {(r.service, r.name): r for r in RPCS}
    for name in OPENAI_ROUTES:
        rpc = by_name[(GATEWAY, name)]
        assert rpc.input == protoset.HTTP_BODY and rpc.output == protoset.HTTP_BODY, name
    for name in TYPED_TWINS:
        rpc = by_name[(GATEWAY, name)]
        assert rpc.input == "switchboard.gateway.v1.ChatCompletionRequest", name
        assert rpc.http_rules() == [], f"{name} is a typed twin for internal clients only"


@pytest.mark.parametrize("rpc", _cases("verb_noun", [r for r in RPCS
                                                   if r.name not in OPENAI_ROUTES and r.full_name not in VERB_ONLY]))
def test_rpc_name_is_verb_noun(rpc):
    assert VERB_NOUN.match(rpc.name), f"{rpc.full_name}: not VerbNoun (verbs: {', '.join(VERBS)})"


def _exempt_side(rpc: protoset.Rpc, type_name: str) -> bool:
    return type_name in (protoset.HTTP_BODY, protoset.EMPTY) or (
        rpc.service == GATEWAY and rpc.name in TYPED_TWINS)


@pytest.mark.parametrize("rpc", _cases("own_request", RPCS))
def test_rpc_has_its_own_request(rpc):
    if _exempt_side(rpc, rpc.input):
        return
    assert rpc.input == f"{rpc.package}.{rpc.name}Request"


@pytest.mark.parametrize("rpc", _cases("own_response", RPCS))
def test_rpc_has_its_own_response_or_returns_its_resource(rpc):
    if _exempt_side(rpc, rpc.output):
        return
    match = VERB_NOUN.match(rpc.name)
    resource = f"{rpc.package}.{match.group(2)}" if match else None
    # Standard methods (Get, Create, Update, ...) return the resource they name (AIP-131..135).
    assert rpc.output in (f"{rpc.package}.{rpc.name}Response", resource), rpc.output


def test_message_and_field_names(fds):
    bad = [m.full_name for m in MESSAGES if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", m.proto.name)]
    bad += [f"{m.full_name}.{f.name}" for m in MESSAGES for f in m.proto.field
            if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", f.name)]
    assert bad == []


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def test_enum_zero_value_is_unspecified_and_values_are_prefixed(fds):
    found = list(protoset.enums(fds))
    assert found, "no enums found"
    for full_name, enum in found:
        prefix = _upper_snake(enum.name)
        assert enum.value[0].number == 0 and enum.value[0].name == f"{prefix}_UNSPECIFIED", full_name
        assert [v.name for v in enum.value if not v.name.startswith(f"{prefix}_")] == [], full_name


def test_money_is_integer_micro_dollars(fds):
    money_words = re.compile(r"cost|price|spend|spent|budget|usd|dollar")
    bad = []
    for message in MESSAGES:
        for field in message.proto.field:
            kind = protoset.field_type(field)
            if kind in ("double", "float") and money_words.search(field.name):
                bad.append(f"{message.full_name}.{field.name} is {kind}")
            if "usd" in field.name and not (field.name.endswith("_micros_usd") and kind == "int64"):
                bad.append(f"{message.full_name}.{field.name} must be int64 *_micros_usd")
    assert bad == []


def test_durations_name_their_unit_and_instants_are_timestamps(fds):
    bad = []
    for message in MESSAGES:
        for field in message.proto.field:
            kind = protoset.field_type(field)
            if re.search(r"latency|duration|timeout|ttl|elapsed", field.name) and not re.search(
                    r"_(ms|seconds|micros)$", field.name):
                bad.append(f"{message.full_name}.{field.name} has no unit suffix")
            if re.search(r"_(at|time)$", field.name) and kind != "google.protobuf.Timestamp":
                bad.append(f"{message.full_name}.{field.name} is {kind}, not a Timestamp")
    assert bad == []


# Fields that hold keys, prompts or completions must say so, so logging code knows to skip them.
SENSITIVE_NAMES = {"key", "secret", "content", "messages", "text", "arguments", "refusal", "query",
                   "prompt", "input", "redacted_text", "redacted_messages"}


def _sensitive_candidates():
    for message in MESSAGES:
        for index, field in enumerate(message.proto.field):
            own_message = field.type == protoset.FDP.TYPE_MESSAGE and field.type_name.startswith(
                ".switchboard.")  # its own fields are checked instead
            if field.name in SENSITIVE_NAMES and not own_message:
                yield message, index, field


@pytest.mark.parametrize("case", _cases("sensitive", list(_sensitive_candidates()),
                                        key=lambda c: f"{c[0].full_name}.{c[2].name}"))
def test_fields_holding_secrets_or_user_text_are_marked_sensitive(case):
    message, index, field = case
    text = protoset.comments(message.file, (*message.location_path, 2, index))
    assert "Sensitive" in text, f"{message.full_name}.{field.name}: add `// Sensitive`"
