"""Start auth: `python -m switchboard_auth`, configured by SWITCHBOARD_AUTH_* and SWITCHBOARD_*."""

from __future__ import annotations

from switchboard_common.launch import service_main

from switchboard_auth import server
from switchboard_auth.settings import AuthSettings


def main() -> None:
    service_main("auth", AuthSettings, server.run)


if __name__ == "__main__":
    main()
