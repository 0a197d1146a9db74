"""`make fuzz`: the corpus, tens of thousands of generated requests and schemathesis against
OpenAI's OpenAPI document, all through a fresh real stack; prints the figures, and exits non-zero
when a goal is missed outside the classes other helpers are fixing."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from tests.fuzz import openai_spec
from tests.fuzz.live import REPO, running_stack
from tests.fuzz.outcomes import PENDING, Logs
from tests.fuzz.run import run_corpus, run_generated

OPERATIONS = ["createChatCompletion", "createCompletion", "createEmbedding", "listModels",
              "retrieveModel"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="generated requests")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--schemathesis-examples", type=int, default=150,
                        help="test cases per operation; 0 skips schemathesis")
    args = parser.parse_args()
    with running_stack() as stack:
        logs = Logs(stack.logs)
        started = time.monotonic()
        figures = run_corpus(stack)
        run_generated(stack, args.requests, seed=args.seed, workers=args.workers, figures=figures)
        elapsed = time.monotonic() - started
        dead = stack.dead()
        tracebacks, pending_tracebacks = logs.tracebacks()
        secrets = logs.secrets([stack.master_key])
        print(figures.report(elapsed, dead, tracebacks, secrets, pending_tracebacks), flush=True)
        print("  pending classes: " + "; ".join(f"{o}: {w}" for o, w in PENDING.items()))
        schemathesis_ok = True
        if args.schemathesis_examples:
            schemathesis_ok = _schemathesis(stack, args.schemathesis_examples, args.seed)
    failed = figures.total() or dead or tracebacks or secrets
    return 1 if failed or not schemathesis_ok else 0


def _schemathesis(stack, examples: int, seed: int) -> bool:
    """OpenAI's spec against the gateway: no server error, every answer valid by the spec."""
    print(f"\nschemathesis: {', '.join(OPERATIONS)} from {openai_spec.version()}", flush=True)
    argv = [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run",
            str(openai_spec.spec_path()), "--url", f"{stack.edge_url}/v1",
            "-H", f"Authorization: Bearer {stack.master_key}",
            *[a for op in OPERATIONS for a in ("--include-operation-id", op)],
            "--checks", "not_a_server_error,response_schema_conformance",
            "--max-examples", str(examples), "--seed", str(seed), "--no-shrink",
            "--workers", "4", "--request-timeout", "30", "--output-truncate", "true"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.schemathesis_hooks",
           "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="sb-schemathesis-") as work:  # its files stay out of the tree
        return subprocess.run(argv, env=env, cwd=work, check=False).returncode == 0


if __name__ == "__main__":
    sys.exit(main())
