"""Proto <-> domain for guardrails' messages, and the REST body's plain words ("block") read as
the proto's enum names, so the servicer only routes calls."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.struct_pb2 import ListValue, Struct
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.guardrails.v1 import guardrails_pb2 as pb

from switchboard_common.errors import InvalidRequest

from switchboard_guardrails.domain import Action, FailMode, Finding, NewPolicy, Policy, PolicyPatch, Rule

_ACTION_FROM_PB = {pb.ACTION_UNSPECIFIED: Action.WARN, pb.ACTION_BLOCK: Action.BLOCK,
                   pb.ACTION_REDACT: Action.REDACT, pb.ACTION_WARN: Action.WARN}
ACTION_TO_PB = {Action.ALLOW: pb.ACTION_ALLOW, Action.WARN: pb.ACTION_WARN,
                Action.REDACT: pb.ACTION_REDACT, Action.BLOCK: pb.ACTION_BLOCK}
_FAIL_FROM_PB = {pb.FAIL_MODE_UNSPECIFIED: FailMode.DEFAULT, pb.FAIL_MODE_CLOSED: FailMode.CLOSED,
                 pb.FAIL_MODE_OPEN: FailMode.OPEN}
FAIL_TO_PB = {v: k for k, v in _FAIL_FROM_PB.items()}
# REST bodies may say "block" or "ACTION_BLOCK", "closed" or "FAIL_MODE_CLOSED".
_ACTION_WORDS = {a.value: pb.Action.Name(ACTION_TO_PB[a]) for a in Action}
_FAIL_WORDS = {m.value: pb.FailMode.Name(FAIL_TO_PB[m]) for m in FailMode if m is not FailMode.DEFAULT}
MUTABLE_FIELDS = ("name", "input_rules", "output_rules", "fail_mode")
SET_BY_SERVICE = ("policy_id", "created_at", "updated_at")


def normalized_body(data: bytes) -> tuple[bytes, list[str]]:
    """The body with plain words replaced by enum names, and the Policy fields it names (for an
    update mask). A body that is not a JSON object is returned as it is, for strict parsing to
    refuse with its own message."""
    try:
        body = orjson.loads(data) if data.strip() else {}
    except orjson.JSONDecodeError:
        return data, []
    if not isinstance(body, dict):
        return data, []
    for direction in ("input_rules", "output_rules", "inputRules", "outputRules"):
        listed = body.get(direction)
        for rule in listed if isinstance(listed, list) else ():
            if isinstance(rule, dict) and isinstance(rule.get("action"), str):
                rule["action"] = _ACTION_WORDS.get(rule["action"], rule["action"])
    for key in ("fail_mode", "failMode"):
        if isinstance(body.get(key), str):
            body[key] = _FAIL_WORDS.get(body[key], body[key])
    fields = pb.Policy.DESCRIPTOR.fields_by_name
    camel = pb.Policy.DESCRIPTOR.fields_by_camelcase_name
    named = [(fields.get(k) or camel[k]).name for k in body if k in fields or k in camel]
    return orjson.dumps(body), named


def refuse_set_by_service(policy: pb.Policy, also: Iterable[str] = ()) -> None:
    for name in (*SET_BY_SERVICE, *also):
        field = pb.Policy.DESCRIPTOR.fields_by_name[name]
        given = policy.HasField(name) if field.message_type else bool(getattr(policy, name))  # type: ignore[arg-type]
        if given:
            raise InvalidRequest(f"'{name}' is set by the service; leave it out.", param=name,
                                 code="unknown_parameter")


def new_policy(policy: pb.Policy) -> NewPolicy:
    refuse_set_by_service(policy)
    return NewPolicy(name=policy.name, tenant_id=policy.tenant_id,
                     input_rules=rules(policy.input_rules, "input_rules"),
                     output_rules=rules(policy.output_rules, "output_rules"),
                     fail_mode=_FAIL_FROM_PB[policy.fail_mode])


def patch(request: pb.UpdatePolicyRequest) -> PolicyPatch:
    policy = request.policy
    refuse_set_by_service(policy, also=("tenant_id",))
    paths = list(request.update_mask.paths) or [
        name for name in MUTABLE_FIELDS if _is_set(policy, name)]
    unknown = [p for p in paths if p not in MUTABLE_FIELDS]
    if unknown:
        raise InvalidRequest(f"update_mask names '{unknown[0]}'; a policy's changeable fields are "
                             f"{', '.join(MUTABLE_FIELDS)}.", param="update_mask",
                             code="invalid_value")
    return PolicyPatch(
        name=policy.name if "name" in paths else None,
        input_rules=rules(policy.input_rules, "input_rules") if "input_rules" in paths else None,
        output_rules=rules(policy.output_rules, "output_rules") if "output_rules" in paths else None,
        fail_mode=_FAIL_FROM_PB[policy.fail_mode] if "fail_mode" in paths else None)


def rules(rules_pb: Iterable[pb.Rule], field: str) -> tuple[Rule, ...]:
    found = []
    for index, rule in enumerate(rules_pb):
        if rule.action == pb.ACTION_ALLOW:
            raise InvalidRequest(f"'{field}[{index}].action' cannot be allow: a rule blocks, "
                                 "redacts or warns.", param=f"{field}[{index}].action",
                                 code="invalid_value")
        found.append(Rule(check=rule.check, action=_ACTION_FROM_PB[rule.action],
                          options=_plain(json_format.MessageToDict(rule.options))))
    return tuple(found)


def policy_to_pb(policy: Policy) -> pb.Policy:
    return pb.Policy(
        policy_id=policy.policy_id, name=policy.name, tenant_id=policy.tenant_id,
        input_rules=[_rule_to_pb(r) for r in policy.input_rules],
        output_rules=[_rule_to_pb(r) for r in policy.output_rules],
        fail_mode=FAIL_TO_PB[policy.fail_mode], created_at=timestamp(policy.created_at),
        updated_at=timestamp(policy.updated_at))


def finding_to_pb(finding: Finding) -> pb.Finding:
    return pb.Finding(check=finding.check, action=ACTION_TO_PB[finding.action],
                      message=finding.message, start=finding.start, end=finding.end,
                      entity=finding.entity, score=finding.score, policy_id=finding.policy_id,
                      message_index=finding.message_index, part_index=finding.part_index)


def messages_from_pb(messages: ListValue) -> list[Any]:
    return list(json_format.MessageToDict(messages)) if messages.values else []


def messages_to_pb(messages: list[Any]) -> ListValue:
    out = ListValue()
    out.extend(messages)
    return out


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _rule_to_pb(rule: Rule) -> pb.Rule:
    options = Struct()
    options.update(dict(rule.options))
    return pb.Rule(check=rule.check, action=ACTION_TO_PB[rule.action], options=options)


def _is_set(policy: pb.Policy, name: str) -> bool:
    value = getattr(policy, name)
    return bool(value) if not hasattr(value, "__len__") or isinstance(value, str) else len(value) > 0


def _plain(value: Any) -> Any:
    """A Struct's numbers are all doubles: whole ones become ints, as the JSON said them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
