"""GuardrailsService: proto <-> domain translation (through `wire`) and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from switchboard.guardrails.v1 import guardrails_pb2 as pb
from switchboard.guardrails.v1 import guardrails_pb2_grpc

from switchboard_common import pagination, strict_json
from switchboard_common.credentials import bearer_key
from switchboard_common.errors import InvalidRequest

from switchboard_guardrails import scanning, wire
from switchboard_guardrails.domain import strongest
from switchboard_guardrails.policies import PolicyAdmin
from switchboard_guardrails.resolver import PolicyResolver
from switchboard_guardrails.streaming import OutputStream, Release


class GuardrailsServicer(guardrails_pb2_grpc.GuardrailsServiceServicer):
    def __init__(self, admin: PolicyAdmin, resolver: PolicyResolver) -> None:
        self._admin = admin
        self._resolver = resolver

    # --- checks (internal callers: the edge does not route these) ------------------------------

    async def CheckInput(self, request, context):
        compiled = await self._resolver.resolve(request.policy_ids)
        verdict = await scanning.check_input(compiled.input_rules,
                                             wire.messages_from_pb(request.messages))
        response = pb.CheckInputResponse(
            action=wire.ACTION_TO_PB[verdict.action],
            findings=[wire.finding_to_pb(f) for f in verdict.findings],
            restorations=verdict.restorations, fail_mode=wire.FAIL_TO_PB[compiled.fail_mode],
            has_output_rules=bool(compiled.output_rules))
        if verdict.redacted_messages is not None:
            response.redacted_messages.CopyFrom(wire.messages_to_pb(verdict.redacted_messages))
        return response

    async def CheckOutput(self, request, context):
        if not request.final:
            raise InvalidRequest("CheckOutput takes a whole answer (final: true); check a "
                                 "stream's pieces with CheckOutputStream.", param="final",
                                 code="invalid_value")
        compiled = await self._resolver.resolve(request.policy_ids)
        verdict = await scanning.check_output(compiled.output_rules, request.text,
                                              request.restorations)
        response = pb.CheckOutputResponse(action=wire.ACTION_TO_PB[verdict.action],
                                          findings=[wire.finding_to_pb(f) for f in verdict.findings])
        if verdict.redacted_text is not None:
            response.redacted_text = verdict.redacted_text
        return response

    async def CheckOutputStream(self, request_iterator, context) -> AsyncIterator:
        stream: OutputStream | None = None
        async for request in request_iterator:
            if stream is None:
                compiled = await self._resolver.resolve(request.policy_ids)
                stream = OutputStream(compiled.output_rules, request.restorations)
            elif request.policy_ids or request.restorations:
                raise InvalidRequest("Only the first message of a stream names policy_ids and "
                                     "restorations.", param="policy_ids", code="invalid_value")
            release = stream.feed(request.text) if request.text else Release("")
            if request.final and not stream.blocked:
                rest = await stream.finish()
                release = Release(release.text + rest.text,
                                  strongest([release.action, rest.action]),
                                  release.findings + rest.findings, rest.held_chars)
            yield _release_to_pb(release)
            if stream.blocked or request.final:
                return

    # --- policies ------------------------------------------------------------------------------

    async def CreatePolicy(self, request, context):
        policy = await self._admin.create(_presented_key(context), wire.new_policy(request.policy))
        return wire.policy_to_pb(policy)

    async def CreatePolicyJson(self, request, context):
        strict_json.refuse_query(context)
        body, _ = wire.normalized_body(request.body.data)
        policy = strict_json.parse(body, pb.Policy)
        return await self.CreatePolicy(pb.CreatePolicyRequest(policy=policy), context)

    async def ListPolicies(self, request, context):
        page = await self._admin.list(_presented_key(context), request.tenant_id,
                                      pagination.decode(request.page_token),
                                      pagination.page_size(request.page_size))
        return pb.ListPoliciesResponse(policies=[wire.policy_to_pb(p) for p in page.policies],
                                       next_page_token=pagination.encode(page.next_cursor))

    async def GetPolicy(self, request, context):
        strict_json.refuse_query_override(context, "policy_id")
        return wire.policy_to_pb(await self._admin.get(_presented_key(context), request.policy_id))

    async def UpdatePolicy(self, request, context):
        policy = await self._admin.update(_presented_key(context), request.policy_id,
                                          wire.patch(request))
        return wire.policy_to_pb(policy)

    async def UpdatePolicyJson(self, request, context):
        strict_json.refuse_query(context)
        body, named = wire.normalized_body(request.body.data)
        policy = strict_json.parse(body, pb.Policy, from_path={"policy_id": request.policy_id})
        policy.policy_id = ""  # from the path: UpdatePolicyRequest carries it beside the policy
        typed = pb.UpdatePolicyRequest(policy_id=request.policy_id, policy=policy)
        if not named:
            raise InvalidRequest("Name the fields to change: "
                                 f"{', '.join(wire.MUTABLE_FIELDS)}.", code="missing_required_parameter")
        typed.update_mask.paths.extend(named)
        return await self.UpdatePolicy(typed, context)

    async def DeletePolicy(self, request, context):
        strict_json.refuse_query_override(context, "policy_id")
        await self._admin.delete(_presented_key(context), request.policy_id)
        return pb.DeletePolicyResponse()


def _presented_key(context: grpc.aio.ServicerContext) -> str:
    """The caller's API key from the call's metadata; empty when there is none."""
    return bearer_key(context.invocation_metadata())


def _release_to_pb(release: Release) -> pb.CheckOutputStreamResponse:
    return pb.CheckOutputStreamResponse(action=wire.ACTION_TO_PB[release.action],
                                        findings=[wire.finding_to_pb(f) for f in release.findings],
                                        release_text=release.text, held_chars=release.held_chars)
