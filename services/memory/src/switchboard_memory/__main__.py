"""Run the memory service: `python -m switchboard_memory`, configured by environment."""

from __future__ import annotations

from switchboard_common.launch import service_main

from switchboard_memory import server
from switchboard_memory.settings import MemorySettings


def main() -> None:
    service_main("memory", MemorySettings, server.run)


if __name__ == "__main__":
    main()
