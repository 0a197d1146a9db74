"""Guardrails on the request path, for keys and tenants with a policy: the client of guardrails'
check RPCs, `CheckInput` on the request's texts before the provider call (block, redact, warn),
retrieved RAG chunks screened the same way, and the fail modes (answer_scan.py checks the answer).
A key without a policy never reaches this module.

While guardrails cannot be reached, a policy's `fail_mode` decides: closed refuses with 503, open
passes unchecked and says so (`x-switchboard-guardrails: unchecked`). The mode is what guardrails
last said for that set of policies; one never checked yet fails closed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
import structlog
from google.protobuf import json_format
from google.protobuf.struct_pb2 import ListValue
from switchboard.guardrails.v1 import guardrails_pb2 as pb
from switchboard.guardrails.v1 import guardrails_pb2_grpc
from switchboard_common import errors, grpc_client
from switchboard_common.errors import InvalidRequest, NotSupportedYet, ServiceUnavailable

from switchboard_router.domain import Endpoint, ParsedRequest, RequestContext

_log = structlog.get_logger("guardrails")
SERVICE = pb.DESCRIPTOR.services_by_name["GuardrailsService"].full_name
HEADER = "x-switchboard-guardrails"
# A request may add policies to its key's and tenant's (never take any away).
POLICIES_HEADER = "x-switchboard-guardrail-policies"
_POLICY_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
MAX_REQUESTED_POLICIES = 16
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_ACTION_WORDS = {pb.ACTION_BLOCK: "block", pb.ACTION_REDACT: "redact", pb.ACTION_WARN: "warn"}
_FAIL_MODES_KEPT = 10_000


class GuardrailBlocked(InvalidRequest):
    default_code = "guardrail_blocked"
    # A stream's events released before the block, to reach the client before the error event.
    released: bytes = b""


class GuardrailsUnavailable(ServiceUnavailable):
    default_code = "guardrails_unavailable"


class Unreachable(Exception):
    """Guardrails did not answer (down, or past the call's deadline)."""


class GuardrailsClient:
    """The typed client of GuardrailsService's check RPCs, a deadline on every call."""

    def __init__(self, target: str, timeout_seconds: float) -> None:
        self._channel = grpc_client.channel(target, SERVICE)
        self._stub = guardrails_pb2_grpc.GuardrailsServiceStub(self._channel)
        self._timeout = timeout_seconds

    async def check_input(self, request: pb.CheckInputRequest) -> pb.CheckInputResponse:
        return await _answer(self._stub.CheckInput(request, timeout=self._timeout))

    async def check_output(self, request: pb.CheckOutputRequest) -> pb.CheckOutputResponse:
        return await _answer(self._stub.CheckOutput(request, timeout=self._timeout))

    def output_stream(self, timeout: float) -> grpc.aio.StreamStreamCall:
        return self._stub.CheckOutputStream(timeout=max(timeout, self._timeout))

    @property
    def piece_timeout(self) -> float:
        return self._timeout

    async def close(self) -> None:
        await self._channel.close()


async def _answer(call: Any) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise translated(exc) from None


def translated(exc: grpc.aio.AioRpcError) -> Exception:
    if exc.code() in _UNREACHABLE:
        return Unreachable(exc.code().name.lower())
    return errors.from_rpc_error(exc, service="guardrails")


@dataclass(slots=True)
class InputVerdict:
    request: ParsedRequest
    restorations: dict[str, str] = field(default_factory=dict)
    checked: bool = True  # False: guardrails was down and the policy fails open
    check_output: bool = True  # the policies have output rules


class Guard:
    def __init__(self, client: GuardrailsClient) -> None:
        self.client = client
        # policy ids -> the fail mode guardrails resolved for them last time
        self._fail_modes: OrderedDict[tuple[str, ...], int] = OrderedDict()

    async def check_input(self, request: ParsedRequest, policies: tuple[str, ...],
                          ctx: RequestContext) -> InputVerdict:
        texts = _InputTexts.of(request)
        try:
            reply = await self.client.check_input(pb.CheckInputRequest(
                policy_ids=policies, messages=texts.listed(), request_id=ctx.request_id))
        except Unreachable as exc:
            self.unreachable(policies, str(exc), ctx)
            return InputVerdict(request, checked=False, check_output=False)
        self._remember(policies, reply.fail_mode)
        report(ctx, reply.findings)
        if reply.action == pb.ACTION_BLOCK:
            raise blocked(reply.findings, "input")
        if reply.action == pb.ACTION_REDACT and reply.redacted_messages.values:
            request = texts.redacted(cast(list, json_format.MessageToDict(reply.redacted_messages)))
        return InputVerdict(request, dict(reply.restorations),
                            check_output=reply.has_output_rules)

    async def screen(self, texts: list[str], policies: tuple[str, ...],
                     ctx: RequestContext) -> set[int]:
        """Which of these retrieved texts the policies' input rules would block (indirect
        injection in a RAG chunk): the caller leaves them out rather than refuse the request.
        Each goes as a tool message: third-party content, which guardrails scores for injection
        with its indirect model (messages.THIRD_PARTY_ROLES), not as the user's chat."""
        chunks: list[Any] = [{"role": "tool", "content": t} for t in texts]
        listed = ListValue()
        listed.extend(chunks)
        try:
            reply = await self.client.check_input(pb.CheckInputRequest(
                policy_ids=policies, messages=listed, request_id=ctx.request_id))
        except Unreachable as exc:
            self.unreachable(policies, str(exc), ctx)
            return set()
        self._remember(policies, reply.fail_mode)
        blocking = [f for f in reply.findings if f.action == pb.ACTION_BLOCK]
        for f in blocking:
            _add_header(ctx, f"excluded:{f.check}")  # a chunk left out, and why
        return {f.message_index for f in blocking}

    def _remember(self, policies: tuple[str, ...], mode: int) -> None:
        self._fail_modes[policies] = mode
        self._fail_modes.move_to_end(policies)
        if len(self._fail_modes) > _FAIL_MODES_KEPT:
            self._fail_modes.popitem(last=False)

    def unreachable(self, policies: tuple[str, ...], why: str, ctx: RequestContext) -> None:
        """Fail open (return, marked unchecked) or closed (raise), as the policies say."""
        if self._fail_modes.get(policies) != pb.FAIL_MODE_OPEN:
            raise GuardrailsUnavailable(
                f"The guardrails service is unavailable ({why}) and this key's guardrail policy "
                "fails closed; try again later.")
        _log.warning("guardrails unreachable; policy fails open", reason=why)
        _add_header(ctx, "unchecked")


def requested_policies(header: str) -> tuple[str, ...]:
    """The policy ids a request's x-switchboard-guardrail-policies names (comma-separated)."""
    ids = tuple(dict.fromkeys(p.strip() for p in header.split(",") if p.strip()))
    if len(ids) > MAX_REQUESTED_POLICIES or not all(_POLICY_ID.fullmatch(p) for p in ids):
        raise InvalidRequest(f"The {POLICIES_HEADER} header takes at most "
                             f"{MAX_REQUESTED_POLICIES} comma-separated policy ids (pol_...).",
                             param=POLICIES_HEADER, code="invalid_value")
    return ids


def blocked(findings: Iterable[pb.Finding], where: str) -> GuardrailBlocked:
    checks = sorted({f.check for f in findings if f.action == pb.ACTION_BLOCK}) or ["policy"]
    return GuardrailBlocked(f"The {where} was blocked by a guardrail policy: {', '.join(checks)} "
                            "check.", param="messages" if where == "input" else None)


def report(ctx: RequestContext, findings: Iterable[pb.Finding]) -> None:
    """Findings in the response header: `action:check[/entity]`, comma-separated, never the text."""
    for f in findings:
        word = _ACTION_WORDS.get(f.action)
        if word is not None:
            _add_header(ctx, f"{word}:{f.check}" + (f"/{f.entity}" if f.entity else ""))


def _add_header(ctx: RequestContext, item: str) -> None:
    for i, (name, value) in enumerate(ctx.headers):
        if name == HEADER:
            if item not in value.split(","):
                ctx.headers[i] = (name, f"{value},{item}")
            return
    ctx.headers.append((HEADER, item))


@dataclass(slots=True)
class _InputTexts:
    """What the input checks read, as chat messages: a chat's messages, or each prompt or input
    of the other endpoints as a user message; and how a redaction goes back into the body."""

    request: ParsedRequest
    messages: list[Any]
    field_name: str
    single: bool  # the body's field held one string, not a list

    @classmethod
    def of(cls, request: ParsedRequest) -> _InputTexts:
        if request.endpoint is Endpoint.CHAT:
            return cls(request, request.body["messages"], "messages", False)
        name = "prompt" if request.endpoint is Endpoint.COMPLETIONS else "input"
        value = request.body.get(name)
        if value is None:
            return cls(request, [], name, False)
        items = [value] if isinstance(value, str) else value
        if not all(isinstance(item, str) for item in items):
            raise NotSupportedYet(name, "token ids cannot be checked by a guardrail policy; send "
                                        "text (issue 18)")
        return cls(request, [{"role": "user", "content": t} for t in items], name,
                   isinstance(value, str))

    def listed(self) -> ListValue:
        out = ListValue()
        out.extend(self.messages)
        return out

    def redacted(self, messages: list[Any]) -> ParsedRequest:
        """The request with each message's content replaced by guardrails' redacted one; the
        rest of each message stays the client's (Struct would turn its integers into floats)."""
        body = dict(self.request.body)
        if self.field_name == "messages":
            body["messages"] = [
                {**original, "content": new["content"]}
                if isinstance(original, dict) and isinstance(new, dict) and "content" in new
                else original for original, new in zip(self.messages, messages, strict=False)]
        else:
            texts = [m.get("content", "") for m in messages]
            body[self.field_name] = texts[0] if self.single else texts
        self.request.body = body
        return self.request
