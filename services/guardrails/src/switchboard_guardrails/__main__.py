"""Run the guardrails service: `python -m switchboard_guardrails`, configured by environment."""

from __future__ import annotations

from switchboard_common import grpc_server, logs
from switchboard_common.settings import load

from switchboard_guardrails import bootstrap, server
from switchboard_guardrails.settings import GuardrailsSettings


def main() -> None:
    settings = load(GuardrailsSettings)
    logs.configure("guardrails", settings.log_level, settings.log_format)

    async def run() -> None:
        await server.serve(settings, bootstrap.build(settings))

    grpc_server.run(run)


if __name__ == "__main__":
    main()
