"""The edge's preStop hook: stop taking new work, then wait for in-flight requests (streams) to end.

Kubernetes runs this before it sends SIGTERM, and Envoy exits at once on SIGTERM, so the drain has
to happen here. Through Envoy's admin API (loopback only):
1. /healthcheck/fail: /healthz answers 503, so external load balancers stop sending;
2. /drain_listeners?graceful: Envoy asks clients to go (HTTP/1.1 `Connection: close`, HTTP/2
   GOAWAY) while still accepting for --drain-time-s, as endpoint removal spreads;
3. wait at least --min-seconds (that spread), then until no request is active or --deadline-seconds
   passes. Keep the deadline below the pod's terminationGracePeriodSeconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request

ACTIVE_STAT = "http.edge.downstream_rq_active"  # edge/render.py: stat_prefix "edge"


def _admin(path: str, method: str = "GET") -> bytes:
    port = os.environ.get("SWITCHBOARD_EDGE_ADMIN_PORT", "9901")
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=2) as response:
        return response.read()


def active_requests() -> int:
    stats = json.loads(_admin(f"/stats?format=json&filter=^{ACTIVE_STAT}$"))["stats"]
    return sum(int(s.get("value", 0)) for s in stats if s.get("name") == ACTIVE_STAT)


def drain(min_seconds: float, deadline_seconds: float, poll_seconds: float = 0.5) -> int:
    """Start the drain and wait; returns the requests still active when it gave up (0 when done)."""
    started = time.monotonic()
    _admin("/healthcheck/fail", "POST")
    _admin("/drain_listeners?graceful", "POST")
    while True:
        elapsed = time.monotonic() - started
        active = active_requests()
        if (elapsed >= min_seconds and active == 0) or elapsed >= deadline_seconds:
            return active
        time.sleep(poll_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--deadline-seconds", type=float, default=60.0)
    args = parser.parse_args()
    try:
        left = drain(args.min_seconds, args.deadline_seconds)
    except OSError as exc:  # Envoy already gone: nothing left to drain
        print(f"edge drain: admin API unreachable ({exc})", file=sys.stderr)
        return
    print(f"edge drain: done, {left} requests still active", file=sys.stderr)


if __name__ == "__main__":
    main()
