"""The naming rules buf does not check (STYLE.md, AIP): VerbNoun RPCs, standard methods that return
their resource, money and time units, `// Sensitive` markers, and where buf's rules are waived.

buf lint (proto/buf.yaml, run by `make lint`) checks the rest: package versions and folders,
service suffixes, request names, message, field and enum naming. Where a proto breaks a rule here
today, the case is marked xfail(strict=True) with the fix in its reason, so fixing the proto turns
it into an unexpected pass that asks for the mark to be removed.
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
         "Validate", "Count", "Watch", "Authorize", "Charge")
VERB_NOUN = re.compile(rf"^({'|'.join(VERBS)})((?:[A-Z][a-z0-9]*)+)$")

# Documented exceptions (gateway.proto's service comment, DESIGN.md "One chat request"):
# the OpenAI routes are named after OpenAI's resources and take and return google.api.HttpBody ...
# Anthropic's Messages API and OpenAI's Responses API inbound are HttpBody routes named alike.
OPENAI_ROUTES = {"ChatCompletions", "Completions", "Embeddings", "Moderations",
                 "Messages", "CountMessageTokens", "Responses"}
# ... and the typed twins of ChatCompletions take the route's own body, ChatCompletionRequest, so
# both twins accept exactly the JSON the route does, and stream OpenAI's chunk shape; the twins of
# Messages and Responses likewise share their route's body and stream the API's own events.
TWIN_REQUESTS = {"CreateChatCompletion": "ChatCompletionRequest",
                 "StreamChatCompletion": "ChatCompletionRequest",
                 "CreateMessage": "MessageRequest", "StreamMessage": "MessageRequest",
                 "CountMessageTokensTyped": "MessageRequest",
                 "CreateResponse": "ResponseRequest", "StreamResponse": "ResponseRequest",
                 "GetResponseTyped": "GetResponseRequest",
                 "DeleteResponseTyped": "DeleteResponseRequest"}
TYPED_TWINS = set(TWIN_REQUESTS)
GATEWAY = "switchboard.gateway.v1.GatewayService"
# ... and an admin route with a body is served by `<Rpc>Json`, the JSON twin of a typed `<Rpc>`:
# it takes `<Rpc>JsonRequest` (the path's fields and `google.api.HttpBody body`) and returns what
# `<Rpc>` returns, since it reads the body strictly and then calls `<Rpc>` (test_http_bindings.py).
JSON_TWIN = re.compile(r"^(?P<typed>[A-Z]\w+)Json$")

# ... and a typed RPC's REST view, `<Rpc>Http`, takes `<Rpc>Request` and returns HttpBody: the JSON
# the service writes (billing.proto's service comment; test_http_bindings.py checks the pairs).
HTTP_VIEW = re.compile(r"^(?P<typed>[A-Z]\w+)Http$")

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
    # buf checks the version suffix and that the folder matches; the `switchboard.<service>` part is ours.
    for file in protoset.switchboard_files(fds):
        assert re.fullmatch(r"switchboard\.[a-z]+\.v[1-9][0-9]*", file.package), file.name


def test_documented_exceptions_are_what_they_claim():
    by_name = {(r.service, r.name): r for r in RPCS}
    for name in OPENAI_ROUTES:
        rpc = by_name[(GATEWAY, name)]
        assert rpc.input == protoset.HTTP_BODY and rpc.output == protoset.HTTP_BODY, name
    for name in TYPED_TWINS:
        rpc = by_name[(GATEWAY, name)]
        assert rpc.input == f"switchboard.gateway.v1.{TWIN_REQUESTS[name]}", name
        assert rpc.http_rules() == [], f"{name} is a typed twin for internal clients only"


def test_buf_rules_are_waived_only_for_the_documented_exceptions(fds):
    # gateway.proto's `buf:lint:ignore` lines are for the HttpBody routes and the typed twins,
    # billing.proto's for the REST views that share their typed RPC's request.
    views = {r.name for r in RPCS if (m := HTTP_VIEW.match(r.name))
             and any(t.name == m["typed"] and t.input == r.input for t in RPCS)}
    waived = set()
    for file in protoset.switchboard_files(fds):
        for s_index, service in enumerate(file.service):
            for m_index, method in enumerate(service.method):
                if "buf:lint:ignore" in protoset.comments(file, (6, s_index, 2, m_index)):
                    waived.add(method.name)
    assert waived == OPENAI_ROUTES | TYPED_TWINS | views


@pytest.mark.parametrize("rpc", _cases("verb_noun", [r for r in RPCS
                                                   if r.name not in OPENAI_ROUTES and r.full_name not in VERB_ONLY]))
def test_rpc_name_is_verb_noun(rpc):
    assert VERB_NOUN.match(rpc.name), f"{rpc.full_name}: not VerbNoun (verbs: {', '.join(VERBS)})"


def _json_twins() -> list[tuple[protoset.Rpc, protoset.Rpc]]:
    by_name = {(r.service, r.name): r for r in RPCS}
    return [(rpc, by_name[(rpc.service, m["typed"])]) for rpc in RPCS
            if (m := JSON_TWIN.match(rpc.name)) and (rpc.service, m["typed"]) in by_name]


@pytest.mark.parametrize("twin, typed", [pytest.param(t, r, id=t.full_name) for t, r in _json_twins()])
def test_json_twins_are_what_they_claim(twin, typed):
    # What the typed RPC returns, or that as JSON the service writes (an HttpBody view).
    assert twin.output in (typed.output, protoset.HTTP_BODY), (
        f"{twin.full_name} must return what {typed.name} returns")
    request = next(m for m in MESSAGES if m.full_name == twin.input)
    fields = [(f.name, protoset.field_type(f)) for f in request.proto.field]
    typed_fields = {f.name: protoset.field_type(f)
                    for m in MESSAGES if m.full_name == typed.input for f in m.proto.field}
    path = [(name, kind) for name, kind in fields[:-1]]
    assert fields[-1] == ("body", protoset.HTTP_BODY), f"{twin.input} must end in the raw body"
    assert all(typed_fields.get(name) == kind for name, kind in path), (
        f"{twin.input}: besides the body, only fields of {typed.input} bound from the path")
    assert {v for rule in twin.http_rules()
            for v in protoset.path_variables(protoset.verb_and_path(rule)[1])} == {n for n, _ in path}


def _exempt_side(rpc: protoset.Rpc, type_name: str) -> bool:
    return type_name in (protoset.HTTP_BODY, protoset.EMPTY) or (
        rpc.service == GATEWAY and rpc.name in TYPED_TWINS)


@pytest.mark.parametrize("rpc", _cases("own_response", RPCS))
def test_rpc_has_its_own_response_or_returns_its_resource(rpc):
    # buf's RPC_RESPONSE_STANDARD_NAME is off (AIP standard methods return the resource): this is it.
    if _exempt_side(rpc, rpc.output) or rpc.name in {t.name for t, _ in _json_twins()}:
        return
    match = VERB_NOUN.match(rpc.name)
    resource = f"{rpc.package}.{match.group(2)}" if match else None
    # Standard methods (Get, Create, Update, ...) return the resource they name (AIP-131..135).
    assert rpc.output in (f"{rpc.package}.{rpc.name}Response", resource), rpc.output


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
