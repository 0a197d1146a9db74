"""Run the memory service: `python -m switchboard_memory`, configured by environment."""

from __future__ import annotations

from switchboard_common import grpc_server, logs
from switchboard_common.settings import load

from switchboard_memory import bootstrap, server
from switchboard_memory.settings import MemorySettings


def main() -> None:
    settings = load(MemorySettings)
    logs.configure("memory", settings.log_level, settings.log_format)

    async def run() -> None:
        await server.serve(settings, bootstrap.build(settings))

    grpc_server.run(run)


if __name__ == "__main__":
    main()
