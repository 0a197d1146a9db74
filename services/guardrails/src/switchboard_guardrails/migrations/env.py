"""Alembic's entry point for guardrails' schema: see switchboard_common.migrations.run_env."""

from switchboard_common.migrations import run_env

from switchboard_guardrails.migrations import HISTORY
from switchboard_guardrails.tables import metadata

run_env(metadata, HISTORY)
