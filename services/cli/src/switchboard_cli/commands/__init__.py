"""The registry of sub-commands: one module each, listed here and nowhere else.

A module exposes `command`, a click command or group; `switchboard` adds every one in this order
(and `switchboard --help` lists them). Later issues add usage, budgets, routing, credentials,
guardrails and memory as a module and a line here.
"""

from __future__ import annotations

import click

from switchboard_cli.commands import (budgets, credentials, guardrails, health, keys, memory, models,
                                      routing, tenants, usage)

COMMANDS: tuple[click.Command, ...] = (keys.command, tenants.command, guardrails.command,
                                       memory.command, models.command, usage.command,
                                       budgets.command, health.command, routing.command,
                                       credentials.command)
