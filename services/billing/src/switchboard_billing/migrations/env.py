"""Alembic's entry point for billing's schema: see switchboard_common.migrations.run_env."""

from switchboard_common.migrations import run_env

from switchboard_billing.migrations import HISTORY
from switchboard_billing.tables import metadata

run_env(metadata, HISTORY)
