"""A free TCP port for a server to bind a moment later, for tests, benchmarks and stacks that run
beside `make run`.

Binding port 0 hands out a port from the kernel's ephemeral range, the same range every outgoing
connection takes its source port from: between the pick and the server's bind, a connection to
PostgreSQL or NATS may take it ("Address already in use"). Ports are picked below that range,
where only explicit binds go, walking from a per-process random start so that two picks in one
process never repeat and two processes rarely meet; each is checked free before it is handed out.
"""

from __future__ import annotations

import itertools
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

_LOWEST = 20000  # under this sit well-known services (PostgreSQL, NATS, Redis, 8080...)
_lock = threading.Lock()
_walk: Iterator[int] | None = None


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    global _walk
    floor = _ephemeral_floor()
    if floor - _LOWEST < 1000:  # an unusual range leaves no room below it: the kernel's pick
        with socket.socket() as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    span = floor - _LOWEST
    with _lock:
        if _walk is None:
            _walk = itertools.count(random.randrange(span))
        for _ in range(span):
            port = _LOWEST + next(_walk) % span
            if _bindable(host, port):
                return port
    raise RuntimeError(f"no free port between {_LOWEST} and {floor} on {host}")
