"""Where a process tree runs and what CPU it spends, read from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Iterable

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def process_tree(roots: Iterable[int]) -> set[int]:
    """The roots and every live descendant (Envoy and gRPC services may fork helpers)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat_fields(int(entry.name))
            if stat is not None:
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, todo = set(), [pid for pid in roots if _stat_fields(pid) is not None]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(roots: Iterable[int]) -> float:
    """utime + stime of the whole tree, plus what its reaped children spent (cutime + cstime),
    so a helper that exits during a measurement is not lost."""
    ticks = 0
    for pid in process_tree(roots):
        stat = _stat_fields(pid)
        if stat is not None:
            # Fields 14-17 of proc(5) stat: utime, stime, cutime, cstime; stat[0] is field 3.
            ticks += sum(int(v) for v in stat[11:15])
    return ticks / _TICKS_PER_SECOND


class CpuMeter:
    """CPU seconds a process tree spends between `start()` and `stop()`."""

    def __init__(self, roots: Iterable[int]):
        self.roots = list(roots)
        self._start = 0.0

    def start(self) -> None:
        self._start = cpu_seconds(self.roots)

    def stop(self) -> float:
        return cpu_seconds(self.roots) - self._start


def pin(roots: Iterable[int], cores: set[int]) -> None:
    """Move every thread of the tree onto `cores`; threads started later inherit it."""
    for pid in process_tree(roots):
        try:
            threads = [int(t) for t in os.listdir(_PROC / str(pid) / "task")]
        except FileNotFoundError:
            continue
        for tid in threads:
            try:
                os.sched_setaffinity(tid, cores)
            except (ProcessLookupError, PermissionError):
                pass  # the thread ended, or is not ours to move


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces and parens)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(b")") + 2:].decode().split()
