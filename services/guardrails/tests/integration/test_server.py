"""The guardrails service as a real process: health, reflection, an honest 501 from every RPC, a
clean SIGTERM (the scenarios of every service not built yet, in switchboard_common.testing)."""

from __future__ import annotations

from switchboard.guardrails.v1 import guardrails_pb2

from switchboard_common.testing.unbuilt import (  # noqa: F401 - pytest collects them here
    own_service, pytest_generate_tests, service, test_every_rpc_answers_501_naming_what_is_missing,
    test_reflection_lists_the_service, test_sigterm_exits_cleanly)

SERVICE = guardrails_pb2.DESCRIPTOR.services_by_name["GuardrailsService"]
