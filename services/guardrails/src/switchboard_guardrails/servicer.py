"""GuardrailsService over gRPC: proto <-> domain translation, with no domain behind it yet.

Each RPC says plainly what is missing instead of returning a made-up verdict: an ALLOW that no
scanner produced would be worse than an error. The interceptor turns `NotImplementedYet` into
UNIMPLEMENTED with `x-http-status: 501`, which the edge shapes into OpenAI's error body.
"""

from __future__ import annotations

from switchboard.guardrails.v1 import guardrails_pb2, guardrails_pb2_grpc
from switchboard_common.errors import NotImplementedYet

_SEE = "see 'Not built yet' in services/guardrails/README.md"
CHECKS_MISSING = f"guardrail checks are not built yet (no scanners): {_SEE}"
POLICIES_MISSING = f"guardrail policies are not built yet (no policy store): {_SEE}"


class GuardrailsServicer(guardrails_pb2_grpc.GuardrailsServiceServicer):
    async def CheckInput(self, request: guardrails_pb2.CheckInputRequest,
                         context) -> guardrails_pb2.CheckInputResponse:
        raise NotImplementedYet(f"input {CHECKS_MISSING}")

    async def CheckOutput(self, request: guardrails_pb2.CheckOutputRequest,
                          context) -> guardrails_pb2.CheckOutputResponse:
        raise NotImplementedYet(f"output {CHECKS_MISSING}")

    async def CreatePolicy(self, request: guardrails_pb2.CreatePolicyRequest,
                           context) -> guardrails_pb2.Policy:
        raise NotImplementedYet(POLICIES_MISSING)

    async def ListPolicies(self, request: guardrails_pb2.ListPoliciesRequest,
                           context) -> guardrails_pb2.ListPoliciesResponse:
        raise NotImplementedYet(POLICIES_MISSING)

    async def GetPolicy(self, request: guardrails_pb2.GetPolicyRequest,
                        context) -> guardrails_pb2.Policy:
        raise NotImplementedYet(POLICIES_MISSING)

    async def DeletePolicy(self, request: guardrails_pb2.DeletePolicyRequest,
                           context) -> guardrails_pb2.DeletePolicyResponse:
        raise NotImplementedYet(POLICIES_MISSING)
