"""`python -m bench.pipeline` (`make bench-pipeline`): what guardrails and memory add to a request
through the edge, over the common request (a key with no policy, no session), against the
instant fake upstream.

One request at a time (concurrency 1), the cases interleaved round by round so machine load hits
them alike; p50 and p90 of the whole request and of a stream's time to its first content byte.
Cases: a PII input policy (redact), PII on input and output (the stream scanned as it passes), a
session of 50 turns (each measured request adds one), and RAG over a collection (top_k 5).

Environment (optional): BENCH_PIPELINE_REQUESTS=200 per case, BENCH_PIPELINE_RAG_DOCUMENTS=1000.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.upstream import FakeUpstream

MESSAGE = ("Write one short friendly sentence that greets a new colleague on their very first day "
           "at work, and mention the welcome lunch at noon in the big meeting room.")
# ~2 KB of messages, as the "typical request" for the pattern checks.
SYSTEM = "You are a helpful assistant for the people team. " * 40
_CONTENT = re.compile(rb'"content":"[^"]')  # a stream's first chunk with text


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9)]


def main() -> None:
    requests = int(os.environ.get("BENCH_PIPELINE_REQUESTS", "200"))
    documents = int(os.environ.get("BENCH_PIPELINE_RAG_DOCUMENTS", "1000"))
    from switchboard_stack import Stack, StackConfig

    with FakeUpstream(core=None) as upstream, tempfile.TemporaryDirectory() as data_dir:
        env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": upstream.base_url}
        stack = Stack(StackConfig.ephemeral(Path(data_dir), env=env, own_nats=True))
        stack.start()
        try:
            _run(stack, requests, documents)
        finally:
            stack.stop()


def _run(stack, requests: int, documents: int) -> None:
    admin = httpx.Client(base_url=stack.edge_url, timeout=120,
                         headers={"authorization": f"Bearer {stack.master_key}"})

    def key(**fields) -> str:
        resp = admin.post("/api/keys", json={"name": "bench", **fields})
        resp.raise_for_status()
        return resp.json()["secret"]

    def policy(body: dict) -> str:
        resp = admin.post("/api/guardrails/policies", json=body)
        resp.raise_for_status()
        return resp.json()["policy_id"]

    pii_in = policy({"name": "bench-in", "input_rules": [{"check": "pii", "action": "redact"}]})
    pii_both = policy({"name": "bench-both", "input_rules": [{"check": "pii", "action": "redact"}],
                       "output_rules": [{"check": "pii", "action": "redact"}]})
    plain, guarded_in, guarded_both, remembering = (
        key(), key(guardrail_policy_ids=[pii_in]), key(guardrail_policy_ids=[pii_both]), key())
    client = httpx.Client(base_url=stack.edge_url, timeout=60)
    session = "bench-50-turns"
    print(f"bench-pipeline: filling a 50-turn session and a {documents}-document collection",
          file=sys.stderr)
    for i in range(50):
        _call(client, remembering, {"session_id": session}, f"turn {i}: {MESSAGE}", False)
    admin.post("/api/memory/collections", headers={"authorization": f"Bearer {remembering}"},
               json={"name": "bench"}).raise_for_status()
    for start in range(0, documents, 200):
        batch = [{"id": f"d{i}", "text": f"Document {i}. The office in city {i} opens at "
                  f"{i % 12 + 1} o'clock and the canteen serves dish number {i * 7}."}
                 for i in range(start, min(start + 200, documents))]
        admin.post("/api/memory/collections/bench/documents", json={"documents": batch},
                   headers={"authorization": f"Bearer {remembering}"}).raise_for_status()

    cases: list[tuple[str, str, dict]] = [
        ("common request (no policy, no session)", plain, {}),
        ("pii input policy (redact)", guarded_in, {}),
        ("pii input + output policy", guarded_both, {}),
        ("session, 50 turns", remembering, {"session_id": session}),
        (f"rag, {documents} chunks, top_k 5", remembering, {"rag_collection": "bench", "rag_top_k": 5}),
    ]
    whole: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    first: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for i in range(requests):
        for name, secret, extra in cases:
            stream = i % 2 == 1
            total, ttfb = _call(client, secret, extra, MESSAGE, stream)
            (first if stream else whole)[name].append(ttfb if stream else total)
    base_whole, _ = _stats(whole[cases[0][0]])
    base_first, _ = _stats(first[cases[0][0]])
    print(f"\n{'case':<42} {'JSON p50':>9} {'p90':>7} {'added':>7} | {'stream TTFB p50':>15} "
          f"{'p90':>7} {'added':>7}   (ms, {requests // 2} each)")
    for name, _, _ in cases:
        w50, w90 = _stats(whole[name])
        f50, f90 = _stats(first[name])
        print(f"{name:<42} {w50:9.2f} {w90:7.2f} {w50 - base_whole:+7.2f} | {f50:15.2f} "
              f"{f90:7.2f} {f50 - base_first:+7.2f}")


def _call(client: httpx.Client, secret: str, extra: dict, text: str, stream: bool
          ) -> tuple[float, float]:
    body = {"model": "gpt-4o-mini", "max_tokens": 64, "stream": stream, **extra,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]}
    headers = {"authorization": f"Bearer {secret}"}
    started = time.perf_counter()
    ttfb = 0.0
    with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
        if resp.status_code != 200:
            resp.read()
            sys.exit(f"bench-pipeline: {resp.status_code} {resp.text[:300]}")
        for chunk in resp.iter_raw():
            if not ttfb and (not stream or _CONTENT.search(chunk)):
                ttfb = time.perf_counter() - started
    total = time.perf_counter() - started
    return total * 1000, ttfb * 1000

if __name__ == "__main__":
    main()
