"""Policy ids to compiled rules, kept per replica for a few seconds so a check compiles nothing
and reads the database at most once per policy in that time. A change made through this replica
drops its copy at once; other replicas see it within `ttl_seconds`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchboard_common.errors import InvalidRequest, NotFound

from switchboard_guardrails import checks
from switchboard_guardrails.checks.base import Toolkit
from switchboard_guardrails.domain import FailMode, Policy, resolve_fail_mode
from switchboard_guardrails.repository import PolicyRepository
from switchboard_guardrails.scanning import Compiled, CompiledRule

_MAX_POLICIES = 20  # per check: a tenant's and a key's few, not a list to loop over


@dataclass(frozen=True)
class _Entry:
    policy: Policy
    input_rules: tuple[CompiledRule, ...]
    output_rules: tuple[CompiledRule, ...]
    expires: float


class PolicyResolver:
    def __init__(self, repo: PolicyRepository, toolkit: Toolkit, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._repo = repo
        self._toolkit = toolkit
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    async def resolve(self, policy_ids: Sequence[str]) -> Compiled:
        """The rules of every policy named, input and output; NotFound naming a policy that
        does not exist (a key must not pass unchecked because its policy was deleted)."""
        ids = list(dict.fromkeys(policy_ids))
        if not ids:
            raise InvalidRequest("Name at least one policy in policy_ids.", param="policy_ids",
                                 code="missing_required_parameter")
        if len(ids) > _MAX_POLICIES:
            raise InvalidRequest(f"policy_ids names more than {_MAX_POLICIES} policies.",
                                 param="policy_ids")
        now = self._clock()
        missing = [i for i in ids if (e := self._entries.get(i)) is None or e.expires <= now]
        if missing:
            for policy in await self._repo.get_many(missing):
                self._entries[policy.policy_id] = self._compile(policy, now)
        entries = []
        for policy_id in ids:
            entry = self._entries.get(policy_id)
            if entry is None or entry.expires <= now:
                raise NotFound(f"Guardrail policy '{policy_id}' does not exist.",
                               param="policy_ids", code="policy_not_found")
            entries.append(entry)
        return Compiled(
            input_rules=tuple(r for e in entries for r in e.input_rules),
            output_rules=tuple(r for e in entries for r in e.output_rules),
            fail_mode=_fail_mode([e.policy for e in entries]))

    def drop(self, policy_id: str) -> None:
        self._entries.pop(policy_id, None)

    def _compile(self, policy: Policy, now: float) -> _Entry:
        def compiled(rules) -> tuple[CompiledRule, ...]:
            return tuple(CompiledRule(policy.policy_id, rule, checks.build(rule, self._toolkit))
                         for rule in rules)

        return _Entry(policy, compiled(policy.input_rules), compiled(policy.output_rules),
                      now + self._ttl)


def _fail_mode(policies: list[Policy]) -> FailMode:
    """Closed if any policy says closed (or blocks by default): together they only tighten."""
    modes = [resolve_fail_mode(p.fail_mode, (*p.input_rules, *p.output_rules)) for p in policies]
    return FailMode.CLOSED if FailMode.CLOSED in modes else FailMode.OPEN
