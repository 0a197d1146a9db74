"""The REST API is bound where clients expect it, and internal RPCs are not reachable from outside.

Envoy's grpc_json_transcoder serves exactly the `google.api.http` bindings in the descriptor set,
and `edge/render.py` sends each path prefix to one service: both must agree with the lists here.
"""

from __future__ import annotations

import pytest

from edge import render
from tests.contract import protoset

GW = "switchboard.gateway.v1.GatewayService"
AUTH = "switchboard.auth.v1.AuthService"
BILLING = "switchboard.billing.v1.BillingService"
GUARDRAILS = "switchboard.guardrails.v1.GuardrailsService"
MEMORY = "switchboard.memory.v1.MemoryService"
STORED = "switchboard.memory.v1.StoredResponseService"

# (method, path) -> the RPC that must serve it.
OPENAI_ROUTES = {
    ("POST", "/v1/chat/completions"): f"{GW}.ChatCompletions",
    ("POST", "/v1/completions"): f"{GW}.Completions",
    ("POST", "/v1/embeddings"): f"{GW}.Embeddings",
    ("POST", "/v1/moderations"): f"{GW}.Moderations",
    ("GET", "/v1/models"): f"{GW}.ListModels",
    ("GET", "/v1/models/{model}"): f"{GW}.GetModel",
    # Other vendors' inbound APIs, translated to any model (switchboard_router.inbound).
    ("POST", "/v1/messages"): f"{GW}.Messages",
    ("POST", "/v1/messages/count_tokens"): f"{GW}.CountMessageTokens",
    ("POST", "/v1/responses"): f"{GW}.Responses",
    ("GET", "/v1/responses/{response_id}"): f"{GW}.GetResponse",
    ("DELETE", "/v1/responses/{response_id}"): f"{GW}.DeleteResponse",
    ("POST", "/v1/responses/{response_id}/cancel"): f"{GW}.CancelResponse",
    ("GET", "/v1/responses/{response_id}/input_items"): f"{GW}.ListResponseInputItems",
}
ADMIN_ROUTES = {
    ("POST", "/api/keys"): f"{AUTH}.CreateKeyJson",
    ("GET", "/api/keys"): f"{AUTH}.ListKeys",
    ("GET", "/api/keys/{key_id}"): f"{AUTH}.GetKey",
    ("PATCH", "/api/keys/{key_id}"): f"{AUTH}.UpdateKeyJson",
    ("DELETE", "/api/keys/{key_id}"): f"{AUTH}.RevokeKey",
    ("POST", "/api/keys/{key_id}/rotate"): f"{AUTH}.RotateKeyJson",
    ("POST", "/api/tenants"): f"{AUTH}.CreateTenantJson",
    ("GET", "/api/tenants"): f"{AUTH}.ListTenants",
    ("GET", "/api/tenants/{tenant_id}"): f"{AUTH}.GetTenant",
    ("PATCH", "/api/tenants/{tenant_id}"): f"{AUTH}.UpdateTenantJson",
    ("DELETE", "/api/tenants/{tenant_id}"): f"{AUTH}.DeleteTenant",
    ("GET", "/api/billing/spend"): f"{BILLING}.GetSpendHttp",
    ("GET", "/api/billing/usage"): f"{BILLING}.ListUsageHttp",
    ("GET", "/api/billing/usage/export"): f"{BILLING}.ExportUsage",
    ("GET", "/api/billing/budget"): f"{BILLING}.GetBudgetHttp",
    ("PUT", "/api/billing/budget"): f"{BILLING}.SetBudgetJson",
    ("GET", "/api/routing/stats"): f"{GW}.GetRoutingStatsHttp",
    ("POST", "/api/credentials"): f"{GW}.CreateProviderCredentialJson",
    ("GET", "/api/credentials"): f"{GW}.ListProviderCredentials",
    ("GET", "/api/credentials/{credential_id}"): f"{GW}.GetProviderCredential",
    ("POST", "/api/credentials/{credential_id}/rotate"): f"{GW}.RotateProviderCredentialJson",
    ("DELETE", "/api/credentials/{credential_id}"): f"{GW}.DeleteProviderCredential",
    ("POST", "/api/guardrails/policies"): f"{GUARDRAILS}.CreatePolicyJson",
    ("GET", "/api/guardrails/policies"): f"{GUARDRAILS}.ListPolicies",
    ("GET", "/api/guardrails/policies/{policy_id}"): f"{GUARDRAILS}.GetPolicy",
    ("PATCH", "/api/guardrails/policies/{policy_id}"): f"{GUARDRAILS}.UpdatePolicyJson",
    ("DELETE", "/api/guardrails/policies/{policy_id}"): f"{GUARDRAILS}.DeletePolicy",
    ("GET", "/api/memory/sessions"): f"{MEMORY}.ListSessions",
    ("GET", "/api/memory/sessions/{session_id}"): f"{MEMORY}.GetSession",
    ("DELETE", "/api/memory/sessions/{session_id}"): f"{MEMORY}.DeleteSession",
    ("POST", "/api/memory/collections"): f"{MEMORY}.CreateCollectionJson",
    ("GET", "/api/memory/collections"): f"{MEMORY}.ListCollections",
    ("GET", "/api/memory/collections/{collection}"): f"{MEMORY}.GetCollection",
    ("DELETE", "/api/memory/collections/{collection}"): f"{MEMORY}.DeleteCollection",
    ("GET", "/api/memory/collections/{collection}/documents"): f"{MEMORY}.ListDocuments",
    ("DELETE", "/api/memory/collections/{collection}/documents/{document_id}"):
        f"{MEMORY}.DeleteDocument",
    ("GET", "/api/memory/collections/{collection}/ingestions/{ingestion_id}"):
        f"{MEMORY}.GetIngestion",
    ("POST", "/api/memory/collections/{collection}/documents"): f"{MEMORY}.AddDocumentsJson",
    ("POST", "/api/memory/collections/{collection}/query"): f"{MEMORY}.QueryCollectionJson",
}
# Bound on purpose beside the routes above: OpenAI clients whose base URL lacks "/v1".
ALIASES = {("POST", "/chat/completions"): f"{GW}.ChatCompletions"}
# The shapes AILB's usage guide documents (seeds/002: "Set Budget Limits", "Check Budget Status").
AILB_ROUTES = {
    ("POST", "/api/billing/budget"): f"{BILLING}.SetBudgetJson",
    ("GET", "/api/billing/budget/{key_id}"): f"{BILLING}.GetBudgetHttp",
}
# Called only by the router (or internal gRPC clients): never bound to a public path.
INTERNAL_ONLY = {
    f"{AUTH}.Authorize", f"{AUTH}.LeaseQuota", f"{AUTH}.ReturnQuota", f"{AUTH}.ChargeTokens",
    f"{BILLING}.LeaseBudget", f"{BILLING}.ReturnBudget",
    f"{BILLING}.BatchGetPrices",
    f"{GUARDRAILS}.CheckInput", f"{GUARDRAILS}.CheckOutput", f"{GUARDRAILS}.CheckOutputStream",
    f"{MEMORY}.BuildContext",
    f"{MEMORY}.AppendTurn",
    # Stored responses: the router serves /v1/responses/{id} (and its input_items, cancel) and
    # calls these.
    f"{STORED}.SetStoredResponse", f"{STORED}.GetStoredResponse",
    f"{STORED}.GetStoredResponseChain", f"{STORED}.DeleteStoredResponse",
    f"{AUTH}.SetSealedCredential", f"{AUTH}.ListSealedCredentials", f"{AUTH}.DeleteSealedCredential",
}
# Public to native gRPC clients (through the edge's listener, key in metadata), not bound to REST.
GRPC_ONLY = {f"{GW}.CreateChatCompletion", f"{GW}.StreamChatCompletion", f"{GW}.CreateMessage",
             f"{GW}.StreamMessage", f"{GW}.CountMessageTokensTyped", f"{GW}.CreateResponse",
             f"{GW}.StreamResponse", f"{GW}.GetResponseTyped", f"{GW}.DeleteResponseTyped"}
# The typed admin RPCs with a body: gRPC clients call them on the service's own port; REST reaches
# each through its `<Rpc>Json` twin, which reads the body strictly (the transcoder would drop
# unknown fields silently) and then calls the typed RPC.
TYPED_ADMIN = {f"{AUTH}.CreateKey", f"{AUTH}.UpdateKey", f"{AUTH}.RotateKey",
               f"{AUTH}.CreateTenant", f"{AUTH}.UpdateTenant",
               f"{BILLING}.SetBudget", f"{GUARDRAILS}.CreatePolicy", f"{GUARDRAILS}.UpdatePolicy",
               f"{MEMORY}.CreateCollection", f"{MEMORY}.AddDocuments", f"{MEMORY}.QueryCollection",
               f"{GW}.CreateProviderCredential", f"{GW}.RotateProviderCredential"}


# Typed RPCs whose REST route is `<Rpc>Http`, the same request answered as JSON the service writes
# (billing: int64 as JSON numbers, dollars beside micro-dollars; billing.proto's service comment).
HTTP_VIEWS = {f"{BILLING}.GetSpend", f"{BILLING}.ListUsage", f"{BILLING}.GetBudget",
              f"{GW}.GetRoutingStats"}


@pytest.fixture(scope="module")
def bound(fds) -> dict[tuple[str, str], str]:
    """Every (method, normalized path) binding in the descriptor set -> its RPC's full name."""
    found: dict[tuple[str, str], str] = {}
    for rpc in protoset.rpcs(fds):
        for rule in rpc.http_rules():
            verb, path = protoset.verb_and_path(rule)
            key = (verb, protoset.normalize(path))
            assert key not in found, f"{key} bound twice: {found[key]} and {rpc.full_name}"
            found[key] = rpc.full_name
    return found


def _params(routes: dict[tuple[str, str], str]) -> list:
    return [pytest.param(route, rpc, id=" ".join(route)) for route, rpc in routes.items()]


@pytest.mark.parametrize("route, rpc", _params({**OPENAI_ROUTES, **ADMIN_ROUTES, **ALIASES}))
def test_route_is_bound_to_its_rpc(bound, route, rpc):
    assert bound.get(route) == rpc


@pytest.mark.parametrize("route, rpc", _params(AILB_ROUTES))
def test_ailb_route_is_bound(bound, route, rpc):
    assert bound.get(route) == rpc


def test_nothing_else_is_bound(bound):
    # A new binding is a new public path: add it to the lists above on purpose.
    expected = {**OPENAI_ROUTES, **ADMIN_ROUTES, **ALIASES, **AILB_ROUTES}
    assert {k: v for k, v in bound.items() if k not in expected} == {}


def test_internal_rpcs_have_no_http_binding(fds):
    rpcs = {r.full_name: r for r in protoset.rpcs(fds)}
    assert INTERNAL_ONLY <= rpcs.keys(), INTERNAL_ONLY - rpcs.keys()
    assert [name for name in INTERNAL_ONLY if rpcs[name].http_rules()] == []


def test_every_rpc_is_either_public_or_internal(fds, bound):
    unclassified = ({r.full_name for r in protoset.rpcs(fds)} - INTERNAL_ONLY - GRPC_ONLY
                    - TYPED_ADMIN - HTTP_VIEWS - set(bound.values()))
    assert unclassified == set(), "bind these to a public path or list them in INTERNAL_ONLY"


def test_http_views_share_their_typed_rpcs_request(fds, bound):
    rpcs = {r.full_name: r for r in protoset.rpcs(fds)}
    for name in HTTP_VIEWS:
        view = rpcs[f"{name}Http"]
        assert rpcs[name].http_rules() == [], f"{name}: bind its {name}Http view instead"
        assert view.input == rpcs[name].input and view.output == protoset.HTTP_BODY, name
        assert f"{name}Http" in bound.values(), f"{name}Http is not bound"


def _raw_body_field(request: protoset.Message | None, name: str) -> bool:
    fields = {f.name: f for f in request.proto.field} if request else {}
    return name in fields and protoset.field_type(fields[name]) == protoset.HTTP_BODY


def test_typed_admin_rpcs_are_reached_only_through_their_json_twin(fds, bound):
    rpcs = {r.full_name: r for r in protoset.rpcs(fds)}
    for name in TYPED_ADMIN:
        assert rpcs[name].http_rules() == [], f"{name}: bind its {name}Json twin instead"
        assert f"{name}Json" in bound.values(), f"{name}Json is not bound"


def test_bindings_are_well_formed(fds):
    problems = []
    messages = {m.full_name: m for m in protoset.messages(fds)}
    for rpc in protoset.rpcs(fds):
        request = messages.get(rpc.input)
        for rule in rpc.http_rules():
            verb, path = protoset.verb_and_path(rule)
            if verb in ("GET", "DELETE") and rule.body:
                problems.append(f"{rpc.full_name}: {verb} {path} has a body")
            # The whole body, as a typed message or as the raw bytes of an HttpBody field that
            # the service reads strictly: never a typed sub-field, whose siblings would be lost.
            if verb in ("POST", "PUT", "PATCH") and rule.body != "*" and not _raw_body_field(
                    request, rule.body):
                problems.append(f"{rpc.full_name}: {verb} {path} should take the whole body ('*')"
                                " or the raw body (an HttpBody field)")
            fields = {f.name for f in request.proto.field} if request else set()
            for variable in protoset.path_variables(path):
                if variable not in fields:
                    problems.append(f"{rpc.full_name}: {path} names {variable}, not a field of {rpc.input}")
    assert problems == []


def _edge_cluster(path: str) -> str | None:
    matches = [(prefix, cluster) for prefix, cluster, _ in render.ROUTES if path.startswith(prefix)]
    return max(matches, key=lambda m: len(m[0]))[1] if matches else None


def test_edge_sends_every_bound_path_to_the_service_that_serves_it(bound):
    wrong = {}
    for (verb, path), rpc in bound.items():
        cluster = _edge_cluster(path)
        if cluster is None or render.SERVICES[cluster] != rpc.rsplit(".", 1)[0]:
            wrong[f"{verb} {path}"] = f"{rpc} but the edge sends it to {cluster}"
    assert wrong == {}


@pytest.mark.parametrize("rpc", sorted(INTERNAL_ONLY), ids=str)
def test_edge_does_not_route_internal_rpcs(rpc):
    service, method = rpc.rsplit(".", 1)
    # A native gRPC call's path is /<package>.<Service>/<Method>.
    assert _edge_cluster(f"/{service}/{method}") is None


@pytest.mark.parametrize("rpc", sorted(GRPC_ONLY), ids=str)
def test_edge_routes_the_typed_twins_to_the_router(rpc):
    service, method = rpc.rsplit(".", 1)
    assert _edge_cluster(f"/{service}/{method}") == "router"
    assert GRPC_ONLY.isdisjoint(INTERNAL_ONLY)
