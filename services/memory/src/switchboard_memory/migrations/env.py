"""Alembic's entry point for memory's schema: see switchboard_common.migrations.run_env."""

from switchboard_common.migrations import run_env

from switchboard_memory.migrations import HISTORY
from switchboard_memory.tables import metadata

run_env(metadata, HISTORY)
