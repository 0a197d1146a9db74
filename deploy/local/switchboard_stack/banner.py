"""What `make run` tells a new user once the stack is up: where it is, which providers are on
(and how to turn the others on), which models answer, and how to use the key with the README."""

from __future__ import annotations

import json
import os
import textwrap
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from switchboard_stack.stack import Stack

_INDENT = " " * 14


def providers(stack: Stack) -> tuple[list[str], list[str]]:
    """(enabled provider names, "name (VARIABLE)" for those off until their key is set), as the
    router reads switchboard.yaml with this stack's environment."""
    from switchboard_router import config as router_config

    env = {**os.environ, **stack.config.env}
    loaded = router_config.load(stack.config.config_path.resolve(), env)
    on = [name for name, spec in loaded.providers.items() if spec.enabled]
    off = [f"{name} ({spec.key_env})" if spec.key_env else name
           for name, spec in loaded.providers.items() if not spec.enabled]
    return on, off


def models(stack: Stack) -> list[str]:
    """The model ids the running gateway lists, asked through the edge as a client would."""
    request = urllib.request.Request(f"{stack.base_url}/models",
                                     headers={"Authorization": f"Bearer {stack.master_key}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return sorted(m["id"] for m in json.load(reply)["data"])


def _wrapped(items: list[str]) -> str:
    return textwrap.fill(", ".join(items), width=100, subsequent_indent=_INDENT) if items else "none"


def _models_line(stack: Stack) -> str:
    try:
        return _wrapped(models(stack))
    except (OSError, ValueError, KeyError) as exc:  # the stack runs: say so rather than stop it
        return f"(could not list them: {exc})"


def render(stack: Stack) -> str:
    on, off = providers(stack)
    key_note = (f" (generated now, kept in {stack.data_dir / 'master-key'})"
                if stack.master_key_created else "")
    off_line = f"\n{_INDENT}off until their key is set: {_wrapped(off)}" if off else ""
    return f"""
Switchboard is running.
  Base URL:   {stack.base_url}
  Dashboard:  {stack.dashboard_url} (log in with the master key or an admin or tenant-admin key)
  Master key: {stack.master_key}{key_note}
  Providers:  {_wrapped(on)}{off_line}
  Models:     {_models_line(stack)}

Try it (the README's examples read the key from the environment):
  export SWITCHBOARD_MASTER_KEY={stack.master_key}
  curl {stack.base_url}/chat/completions -H "Authorization: Bearer $SWITCHBOARD_MASTER_KEY" \\
    -H "Content-Type: application/json" \\
    -d '{{"model": "switchboard-local", "messages": [{{"role": "user", "content": "Hello"}}]}}'

Logs: {stack.logs} (this run; the previous run's as *.log.1)
Press Ctrl-C to stop."""
