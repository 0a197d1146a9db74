"""Guardrail policy ids on keys and tenants: well-formed and bounded. Guardrails owns the policies;
a check naming one that does not exist is refused there (404 policy_not_found), so a key never
passes unchecked because its policy was deleted."""

from __future__ import annotations

import re

from switchboard_common.errors import InvalidRequest

MAX_POLICIES = 16
_POLICY_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def check_policy_ids(ids: tuple[str, ...], param: str = "guardrail_policy_ids") -> tuple[str, ...]:
    if len(ids) > MAX_POLICIES:
        raise InvalidRequest(f"{param} holds more than {MAX_POLICIES} entries.", param=param)
    for index, policy_id in enumerate(ids):
        if not _POLICY_ID.fullmatch(policy_id):
            raise InvalidRequest(f"{param}[{index}] is not a policy id (such as 'pol_...').",
                                 param=f"{param}[{index}]", code="invalid_value")
    return tuple(dict.fromkeys(ids))
