"""Start auth: `python -m switchboard_auth`, configured by SWITCHBOARD_AUTH_* and SWITCHBOARD_*."""

from __future__ import annotations

from switchboard_common import grpc_server, logs
from switchboard_common.settings import load

from switchboard_auth import server
from switchboard_auth.settings import AuthSettings


def main() -> None:
    settings = load(AuthSettings)
    logs.configure("auth", settings.log_level, settings.log_format)
    grpc_server.run(lambda: server.run(settings))


if __name__ == "__main__":
    main()
