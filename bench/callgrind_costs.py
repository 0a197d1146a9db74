"""`python -m bench.callgrind_costs DUMP [N]`: a callgrind dump's self cost per shared object and
its N costliest functions, as percentages of the dump's total.

It answers where the router's instructions go (the interpreter, grpc-core, upb, orjson, ...) from
a dump that `BENCH_INSTR_KEEP=DIR make bench-instructions` kept. callgrind_annotate's listing of
these dumps (no per-line data) mixes inclusive costs into its self column; this reads the file
itself: each cost line counts for the function above it, except the one after a `calls=` line,
which is the callee's inclusive cost.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_NAMED = re.compile(r"\((\d+)\)(?: (.*))?")
# Which name table each key's compressed "(id) name" refers to.
_TABLES = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn",
           "fl": "fl", "fi": "fl", "fe": "fl", "cfl": "fl", "cfi": "fl"}


def self_costs(dump: Path) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Self instructions per object and per (object, function)."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}, "fl": {}}
    by_object: Counter[str] = Counter()
    by_function: Counter[tuple[str, str]] = Counter()
    obj = fn = "?"
    callee_cost_next = False
    for line in dump.read_text(errors="replace").splitlines():
        if not line:
            continue
        if line[0].isdigit() or line[0] in "+-*":
            if callee_cost_next:
                callee_cost_next = False
                continue
            fields = line.split()
            if len(fields) >= 2:
                by_object[obj] += int(fields[1])
                by_function[obj, fn] += int(fields[1])
            continue
        key, _, value = line.partition("=")
        if key == "calls":
            callee_cost_next = True
        elif key in _TABLES:
            table = names[_TABLES[key]]
            named = _NAMED.match(value)
            if named:
                if named.group(2) is not None:
                    table[named.group(1)] = named.group(2)
                value = table.get(named.group(1), "?")
            if key == "ob":
                obj = value
            elif key == "fn":
                fn = value
    return by_object, by_function


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m bench.callgrind_costs DUMP [FUNCTIONS]")
    by_object, by_function = self_costs(Path(sys.argv[1]))
    total = sum(by_object.values()) or 1
    print(f"{total:,} instructions (self costs)")
    for obj, cost in by_object.most_common(15):
        print(f"{100 * cost / total:6.2f} %  {Path(obj).name}")
    print()
    for (obj, fn), cost in by_function.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 25):
        print(f"{100 * cost / total:6.2f} %  {fn[:80]}  [{Path(obj).name}]")


if __name__ == "__main__":
    main()
