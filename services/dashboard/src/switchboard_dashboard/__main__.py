"""Run the dashboard: `python -m switchboard_dashboard`, configured by environment."""

from __future__ import annotations

import asyncio

from switchboard_common import logs
from switchboard_common.settings import load

from switchboard_dashboard import server
from switchboard_dashboard.settings import DashboardSettings


def main() -> None:
    settings = load(DashboardSettings)
    logs.configure("dashboard", settings.log_level, settings.log_format)
    asyncio.run(server.run(settings))


if __name__ == "__main__":
    main()
