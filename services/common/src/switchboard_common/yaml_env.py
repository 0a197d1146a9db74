"""`${VAR}` expansion in switchboard.yaml, for every service that reads a section of it.

`$$` is a literal `$`; `${VAR}` must be set; `${VAR:-default}` falls back when unset or empty.
Problems are collected with the field path of each, so a file can be refused with all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(node: Any, env: Mapping[str, str], path: str,
           problems: list[tuple[str, str]]) -> Any:
    """`node` with every string expanded; an unset `${VAR}` is a problem at its path."""
    if isinstance(node, str):
        def sub(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            value = env.get(name)
            if value:
                return value
            if default is not None:
                return default
            if value is None:
                problems.append((path, f"environment variable {name} is not set "
                                       f"(write ${{{name}:-}} to make it optional)"))
            return ""
        return _VAR.sub(sub, node) if "$" in node else node
    if isinstance(node, dict):
        return {k: expand(v, env, f"{path}.{k}" if path else str(k), problems)
                for k, v in node.items()}
    if isinstance(node, list):
        return [expand(v, env, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    return node
