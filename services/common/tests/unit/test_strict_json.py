"""Strict JSON bodies: every unknown field and wrong type is a 400 naming it, on the real protos."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from google.api import httpbody_pb2
from switchboard.auth.v1 import auth_pb2
from switchboard.billing.v1 import billing_pb2
from switchboard.guardrails.v1 import guardrails_pb2
from switchboard.memory.v1 import memory_pb2

from switchboard_common.errors import InvalidRequest
from switchboard_common.strict_json import json_twin, parse, refuse_query_override


def _parse(body, cls=auth_pb2.CreateKeyRequest, **kw):
    return parse(body if isinstance(body, bytes) else orjson.dumps(body), cls, **kw)


def _refused(body, cls=auth_pb2.CreateKeyRequest, **kw) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as err:
        _parse(body, cls, **kw)
    assert err.value.http_status == 400
    return err.value


def test_a_valid_body_becomes_the_typed_request():
    request = _parse({"name": "ci", "tenant_id": "acme", "allowed_models": ["gpt-4o*"],
                      "expires_at": "2030-01-31T12:00:00Z", "metadata": {"team": "ml"},
                      "expires_in_seconds": "3600"})  # int64 as proto3 JSON writes it
    assert (request.name, request.tenant_id, list(request.allowed_models)) == (
        "ci", "acme", ["gpt-4o*"])
    assert request.expires_at.ToDatetime(tzinfo=UTC) == datetime(2030, 1, 31, 12, tzinfo=UTC)
    assert request.metadata == {"team": "ml"}
    assert request.expires_in_seconds == 3600


def test_camel_case_names_and_null_mean_what_proto3_json_says():
    request = _parse({"tenantId": "acme", "name": None})
    assert request.tenant_id == "acme" and request.name == ""


@pytest.mark.parametrize("body, param", [
    ({"rpm_limit": 100}, "rpm_limit"),
    ({"name": "x", "rate_limits": {"rpm": 1}}, "rate_limits.rpm"),
])
def test_unknown_fields_are_named(body, param):
    err = _refused(body)
    assert (err.param, err.code) == (param, "unknown_parameter")
    assert f"Unknown parameter: '{param}'" in err.message


def test_an_unknown_field_suggests_the_closest_known_one():
    err = _refused({"alowed_models": ["m"]})
    assert "Did you mean 'allowed_models'?" in err.message


def test_unknown_fields_deep_inside_repeated_messages_are_named():
    body = {"documents": [{"id": "a", "text": "t"}, {"id": "b", "txt": "t"}]}
    err = _refused(body, memory_pb2.AddDocumentsRequest)
    assert err.param == "documents[1].txt"


@pytest.mark.parametrize("body, param, expected", [
    ({"name": 5}, "name", "a string"),
    ({"name": True}, "name", "a string"),
    ({"allowed_models": "gpt-4o"}, "allowed_models", "an array"),
    ({"allowed_models": ["ok", 3]}, "allowed_models[1]", "a string"),
    ({"allowed_models": ["ok", None]}, "allowed_models[1]", "a string"),
    ({"metadata": {"team": 1}}, "metadata.team", "a string"),
    ({"metadata": ["team"]}, "metadata", "an object"),
    ({"rate_limits": {"requests_per_minute": "100"}}, "rate_limits.requests_per_minute",
     "an integer"),  # 32-bit integers are JSON numbers
    ({"rate_limits": {"requests_per_minute": 1.5}}, "rate_limits.requests_per_minute",
     "an integer"),
    ({"rate_limits": {"requests_per_minute": True}}, "rate_limits.requests_per_minute",
     "an integer"),
    ({"rate_limits": 7}, "rate_limits", "an object"),
    ({"expires_in_seconds": "soon"}, "expires_in_seconds", "an integer"),
    ({"expires_at": 1700000000}, "expires_at", "a string"),
])
def test_wrong_json_types_are_named(body, param, expected):
    err = _refused(body)
    assert (err.param, err.code) == (param, "invalid_type")
    assert f"Invalid type for '{param}': expected {expected}" in err.message


def test_bad_values_are_named():
    assert _refused({"expires_at": "tomorrow"}).param == "expires_at"
    assert _refused({"rate_limits": {"requests_per_minute": 2**31}}).param == (
        "rate_limits.requests_per_minute")
    err = _refused({"period": "YEARLY"}, billing_pb2.SetBudgetRequest)
    assert (err.param, err.code) == ("period", "invalid_value")
    assert "BUDGET_PERIOD_MONTHLY" in err.message
    for bad in (["BUDGET_PERIOD_DAILY"], {"v": 1}, 9, True):
        assert _refused({"period": bad}, billing_pb2.SetBudgetRequest).param == "period"
    assert _parse({"period": 2}, billing_pb2.SetBudgetRequest).period == 2


def test_enums_structs_and_repeated_numbers():
    budget = _parse({"period": "BUDGET_PERIOD_MONTHLY", "limit_micros_usd": 5_000_000,
                     "alert_thresholds_percent": [50, 90]}, billing_pb2.SetBudgetRequest)
    assert budget.period == billing_pb2.BUDGET_PERIOD_MONTHLY
    assert list(budget.alert_thresholds_percent) == [50, 90]
    policy = _parse({"policy": {"name": "p", "input_rules": [
        {"check": "pii", "action": "ACTION_REDACT", "options": {"entities": ["EMAIL"], "n": 1}}]}},
        guardrails_pb2.CreatePolicyRequest)
    assert policy.policy.input_rules[0].options["entities"][0] == "EMAIL"
    err = _refused({"policy": {"input_rules": [{"options": ["x"]}]}},
                   guardrails_pb2.CreatePolicyRequest)
    assert err.param == "policy.input_rules[0].options"


@pytest.mark.parametrize("data, code", [
    (b'{"name": ', "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'"name"', "invalid_json"),
])
def test_the_body_must_be_a_json_object(data, code):
    assert _refused(data).code == code


def test_an_empty_body_is_an_empty_request():
    assert _parse(b"") == auth_pb2.CreateKeyRequest()


def test_path_fields_come_from_the_path_only():
    request = _parse({"name": "n"}, auth_pb2.UpdateKeyRequest, from_path={"key_id": "key_a"})
    assert (request.key_id, request.name) == ("key_a", "n")
    err = _refused({"key_id": "key_b"}, auth_pb2.UpdateKeyRequest, from_path={"key_id": "key_a"})
    assert err.param == "key_id"


def test_a_field_the_resource_will_take_later_is_refused_saying_so():
    err = _refused({"name": "t", "guardrail_policy_ids": ["pii"]}, auth_pb2.CreateTenantRequest,
                   not_yet={"guardrail_policy_ids": "guardrails land in issue 18"})
    assert (err.param, err.code) == ("guardrail_policy_ids", "not_implemented")
    assert "not supported yet: guardrails land in issue 18" in err.message


class _Context:
    def __init__(self, metadata=()) -> None:
        self._metadata = tuple(metadata)

    def invocation_metadata(self):
        return self._metadata


class _Servicer:
    UpdateKeyJson = json_twin("UpdateKey", auth_pb2.UpdateKeyRequest)

    async def UpdateKey(self, request, context):
        return auth_pb2.Key(key_id=request.key_id, name=request.name)


async def test_the_twin_calls_the_typed_rpc_with_the_path_and_the_body():
    body = httpbody_pb2.HttpBody(content_type="application/json", data=b'{"name": "n"}')
    key = await _Servicer().UpdateKeyJson(auth_pb2.UpdateKeyJsonRequest(key_id="key_a", body=body),
                                          _Context())
    assert (key.key_id, key.name) == ("key_a", "n")


async def test_the_twin_refuses_query_parameters_that_would_override_the_path():
    body = httpbody_pb2.HttpBody(data=b"{}")
    context = _Context([("x-envoy-original-path", "/api/keys/key_a?key_id=key_b")])
    with pytest.raises(InvalidRequest) as err:
        await _Servicer().UpdateKeyJson(auth_pb2.UpdateKeyJsonRequest(key_id="key_b", body=body),
                                        context)
    assert (err.value.param, err.value.code) == ("key_id", "unknown_parameter")


@pytest.mark.parametrize("query", ["key_id=key_b", "keyId=key_b", "page_size=1&key_id=key_b"])
def test_a_path_field_named_in_the_query_is_refused(query):
    context = _Context([("x-envoy-original-path", f"/api/keys/key_a?{query}")])
    with pytest.raises(InvalidRequest) as err:
        refuse_query_override(context, "key_id")
    assert err.value.param == "key_id"


def test_other_query_parameters_and_direct_grpc_calls_pass():
    refuse_query_override(_Context([("x-envoy-original-path", "/api/keys/key_a?x=1")]), "key_id")
    refuse_query_override(_Context([("x-envoy-original-path", "/api/keys/key_a")]), "key_id")
    refuse_query_override(_Context(), "key_id")
