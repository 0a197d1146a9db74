"""Start billing: `python -m switchboard_billing`, configured by SWITCHBOARD_BILLING_* env."""

from __future__ import annotations

from switchboard_common import grpc_server, logs
from switchboard_common.settings import load

from switchboard_billing import server
from switchboard_billing.settings import BillingSettings


def main() -> None:
    settings = load(BillingSettings)
    logs.configure("billing", settings.log_level, settings.log_format)
    grpc_server.run(lambda: server.run(settings))


if __name__ == "__main__":
    main()
