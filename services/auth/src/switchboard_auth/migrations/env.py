"""Alembic's entry point for auth's schema: see switchboard_common.migrations.run_env."""

from switchboard_common.migrations import run_env

from switchboard_auth.migrations import HISTORY
from switchboard_auth.tables import metadata

run_env(metadata, HISTORY)
