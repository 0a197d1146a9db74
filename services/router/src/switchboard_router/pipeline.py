"""The steps between admission and the provider call: where guardrails and memory plug in.

Input guardrails run when the key or tenant has a policy; memory builds context when the request
names a session or a RAG collection. Neither service is wired yet (later issues), so these
requests pass through unchanged, with a debug line, and nothing is faked. The common request (no
policy, no session) costs one branch here.
"""

from __future__ import annotations

import structlog

from switchboard_router.domain import Caller, ParsedRequest

_log = structlog.get_logger("pipeline")


class Pipeline:
    async def prepare(self, request: ParsedRequest, caller: Caller) -> ParsedRequest:
        if caller.guardrail_policy_ids:
            _log.debug("guardrails not wired yet; request passes unchecked",
                       policies=len(caller.guardrail_policy_ids))
        if request.session_id or request.rag_collection:
            _log.debug("memory not wired yet; request passes without context",
                       session=bool(request.session_id), rag=bool(request.rag_collection))
        return request

    def needed(self, request: ParsedRequest, caller: Caller) -> bool:
        return bool(caller.guardrail_policy_ids or request.session_id or request.rag_collection)
