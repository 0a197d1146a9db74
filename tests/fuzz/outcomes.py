"""What one fuzz request got back, whether that is acceptable, and the figures over many."""

from __future__ import annotations

import json
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

SLOW_SECONDS = 2.0
MAX_ERROR_MESSAGE = 1200  # errors.py caps messages at 1024 characters, plus what it says it cut
# Other helpers fix these classes on their own branches. Until their work is merged, requests of
# these classes are expected to fail here: they are counted apart and their tests are xfail. The
# lead deletes an entry once its fix is on main, which turns its cases back on.
PENDING: dict[str, str] = {}  # none left
_SECRET = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
# Tracebacks that grpc-core logs for requests the edge is to refuse before they reach a service.
_PENDING_TRACEBACKS = [
]


@dataclass(slots=True)
class Outcome:
    status: int  # 0: no HTTP answer at all
    seconds: float
    content_type: str = ""
    body: bytes = b""
    grpc_headers: bool = False  # grpc-status / grpc-message leaked to a REST client
    error: str = ""  # transport failure
    anthropic: bool = False  # asked on /v1/messages, whose errors are in Anthropic's shape

    def problems(self) -> list[str]:
        """What is wrong with this answer whatever was asked: 5xx, shape, leaks."""
        out = []
        if self.status == 0:
            out.append(f"no answer ({self.error})")
        elif self.status >= 500:
            out.append(f"{self.status}")
        if self.status >= 400 and (shape := self.shape_problem()):
            out.append(shape)
        if self.grpc_headers:
            out.append("grpc-* headers leaked")
        return out

    def shape_problem(self) -> str:
        if not self.content_type.startswith("application/json"):
            return f"not JSON ({self.content_type or 'no content type'}, {len(self.body)} bytes)"
        try:
            doc = json.loads(self.body)
        except ValueError:
            return "a body that is not JSON"
        err = doc.get("error") if isinstance(doc, dict) else None
        if self.anthropic:
            if not isinstance(err, dict) or doc != {"type": "error", "error": err} or set(err) != {
                    "type", "message"} or not isinstance(err["message"], str):
                return f"not Anthropic's error shape: {self.body[:120]!r}"
        elif not isinstance(err, dict) or set(doc) != {"error"} or set(err) != {
                "message", "type", "param", "code"} or not isinstance(err["message"], str):
            return f"not OpenAI's error shape: {self.body[:120]!r}"
        if len(err["message"]) > MAX_ERROR_MESSAGE:
            return f"an error message of {len(err['message'])} characters"
        return ""

    def error_param(self) -> str | None:
        try:
            return json.loads(self.body)["error"]["param"]
        except (ValueError, KeyError, TypeError):
            return None


def send(client: httpx.Client, method: str, url: str, headers: dict, content: bytes | None,
         timeout: float = 30.0) -> Outcome:
    started = time.perf_counter()
    try:
        resp = client.request(method, url, headers=headers, content=content, timeout=timeout)
    except httpx.HTTPError as exc:
        return Outcome(0, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    return Outcome(resp.status_code, time.perf_counter() - started,
                   resp.headers.get("content-type", ""), resp.content,
                   grpc_headers=any(h in resp.headers for h in ("grpc-status", "grpc-message")),
                   anthropic=urlsplit(url).path.startswith("/v1/messages"))


def send_raw(base_url: str, request: bytes, timeout: float = 5.0) -> Outcome:
    """Bytes no HTTP client would send (a Content-Length the body does not have); reads what comes
    back until the server answers or closes."""
    parts = urlsplit(base_url)
    started = time.perf_counter()
    data = b""
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
            sock.sendall(request)
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        return Outcome(0, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Outcome(0, time.perf_counter() - started, error=f"no status line: {data[:80]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return Outcome(status, time.perf_counter() - started, headers.get("content-type", ""), body,
                   grpc_headers="grpc-status" in headers)


@dataclass
class Figures:
    """The numbers `make fuzz` prints: by status, and each kind of failure with examples."""

    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)  # kind of failure -> how many
    failures: dict[str, list[str]] = field(default_factory=dict)  # kind -> a few examples
    pending: Counter = field(default_factory=Counter)  # owner -> failures of their classes
    requests: int = 0
    large: int = 0

    def add(self, name: str, outcome: Outcome, *, pending: str | None = None,
            large: bool = False, expected: list[str] = ()) -> list[str]:
        self.requests += 1
        self.large += large
        self.statuses[outcome.status] += 1
        problems = [*outcome.problems(), *expected]
        if outcome.seconds > SLOW_SECONDS and not large:
            problems.append(f"took {outcome.seconds:.1f} s")
        for problem in problems:
            kind = _kind(problem)
            if pending:
                self.pending[pending] += 1
                kind = f"{kind} [pending {pending}]"
            self.kinds[kind] += 1
            examples = self.failures.setdefault(kind, [])
            if len(examples) < 5:
                examples.append(f"{name}: {problem} (HTTP {outcome.status}, {outcome.body[:100]!r})")
        return problems

    def total(self, prefix: str = "", *, pending: bool = False) -> int:
        """Failures of a kind (all kinds by default), in pending classes or not."""
        return sum(n for k, n in self.kinds.items()
                   if k.startswith(prefix) and ("[pending" in k) == pending)

    def report(self, seconds: float, dead: list[str], tracebacks: list[str],
               secrets: list[str], pending_tracebacks: dict[str, list[str]] | None = None) -> str:
        total = self.total
        lines = [f"fuzz: {self.requests} requests in {seconds:.1f} s",
                 "  by status: " + ", ".join(f"{s or 'none'}: {n}"
                                             for s, n in sorted(self.statuses.items())),
                 f"  5xx or no answer: {total('5xx')} (goal 0)",
                 f"  errors not in OpenAI's shape (Anthropic's on /v1/messages): {total('shape')} (goal 0)",
                 f"  grpc-* headers leaked to REST clients: {total('grpc')} (goal 0)",
                 f"  over {SLOW_SECONDS:.0f} s: {total('slow')} (goal 0; "
                 f"{self.large} documented large bodies exempt)",
                 f"  other unexpected answers: {total('unexpected')} (goal 0)",
                 f"  services that died: {', '.join(dead) or 'none'} (goal none)",
                 f"  tracebacks in the logs: {len(tracebacks)} (goal 0)",
                 f"  secrets in the logs: {len(secrets)} (goal 0)"]
        pending = Counter(self.pending)
        for owner, found in (pending_tracebacks or {}).items():
            pending[f"{owner} (tracebacks)"] += len(found)
        if pending:
            lines.append("  failures in classes other helpers fix (not counted above): "
                         + ", ".join(f"{o}: {n}" for o, n in sorted(pending.items())))
        for kind, examples in sorted(self.failures.items()):
            lines.append(f"  - {kind}: " + "; ".join(examples))
        lines += [f"  - traceback: {t}" for t in tracebacks[:5]]
        lines += [f"  - secret: {s}" for s in secrets[:5]]
        return "\n".join(lines)


def _kind(problem: str) -> str:
    if problem.startswith(("5", "no answer")):
        return "5xx"
    if problem.startswith("grpc"):
        return "grpc headers"
    if problem.startswith("took"):
        return "slow"
    if problem.startswith(("not JSON", "a body", "not OpenAI", "an error message")):
        return "shape"
    return "unexpected"


class Logs:
    """The services' log files, read from where they stood when the run began."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._start = {p: p.stat().st_size for p in directory.glob("*.log")}

    def lines(self) -> list[tuple[str, str]]:
        out = []
        for path in sorted(self._dir.glob("*.log")):
            with path.open("rb") as f:
                f.seek(self._start.get(path, 0))
                out += [(path.stem, line) for line in f.read().decode("utf-8", "replace").splitlines()]
        return out

    def tracebacks(self) -> tuple[list[str], dict[str, list[str]]]:
        """(tracebacks, {owner: tracebacks of a class another helper fixes}), each as the
        service's name and the exception it ends with."""
        lines = self.lines()
        mine: list[str] = []
        pending: dict[str, list[str]] = {}
        for i, (name, line) in enumerate(lines):
            if "Traceback (most recent call last)" not in line:
                continue
            tail = [text for svc, text in lines[i + 1:i + 40] if svc == name]
            ends = next((t for t in tail if t and not t.startswith((" ", "\t"))), "")
            around = " ".join(t for svc, t in lines[max(0, i - 2):i + 40] if svc == name)
            owner = next((o for signature, o in _PENDING_TRACEBACKS if signature in around), None)
            (pending.setdefault(owner, []) if owner else mine).append(f"{name}: {ends[:160]}")
        return mine, pending

    def secrets(self, known: list[str]) -> list[str]:
        """Lines holding a key we used, or anything shaped like an sk- key."""
        out = []
        for name, line in self.lines():
            if any(k and k in line for k in known) or _SECRET.search(line):
                out.append(f"{name}: {line[:160]}")
        return out
