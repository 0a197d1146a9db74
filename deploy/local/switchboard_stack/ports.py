"""Every port the stack will listen on is checked before anything starts, and a taken one is
named with the variable that moves it (a gRPC server binds a taken port with SO_REUSEPORT and
shares it silently: a leftover router would answer half the requests)."""

from __future__ import annotations

import errno
import socket

from switchboard_stack.config import StackConfig


def taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "taken"
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check(config: StackConfig) -> None:
    """Raise RuntimeError listing each taken port, what it is for and how to move it."""
    problems = [f"  port {port} ({what}) is in use on {config.host}: set {variable} to a free port"
                for port, what, variable in config.ports() if taken(config.host, port)]
    if problems:
        raise RuntimeError("\n".join([*problems, "  (is another `make run` still running?)"]))
