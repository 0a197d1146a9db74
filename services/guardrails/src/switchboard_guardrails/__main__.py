"""Run the guardrails service: `python -m switchboard_guardrails`, configured by environment."""

from __future__ import annotations

from switchboard_common.launch import service_main

from switchboard_guardrails import server
from switchboard_guardrails.settings import GuardrailsSettings


def main() -> None:
    service_main("guardrails", GuardrailsSettings, server.run)


if __name__ == "__main__":
    main()
