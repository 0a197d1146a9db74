"""Start billing: `python -m switchboard_billing`, configured by SWITCHBOARD_BILLING_* env."""

from __future__ import annotations

from switchboard_common.launch import service_main

from switchboard_billing import server
from switchboard_billing.settings import BillingSettings


def main() -> None:
    service_main("billing", BillingSettings, server.run)


if __name__ == "__main__":
    main()
