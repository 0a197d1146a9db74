"""`python -m switchboard_memory.evaluation [--locomo PATH]`: print recall@1/5/10 (`make eval`)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from switchboard_common import logs

from switchboard_memory.evaluation.run import KS, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m switchboard_memory.evaluation")
    parser.add_argument("--locomo", type=Path, default=None,
                        help="a local copy of LoCoMo-10 (its locomo10_v2 folder or "
                             "locomo10.json); never commit it")
    parser.add_argument("--small", action="store_true", help="the quick subset make test uses")
    args = parser.parse_args()
    logs.configure("memory-eval", level="WARNING", fmt="console")
    results = asyncio.run(evaluate(args.locomo, args.small))
    print(f"{'retrieval':<40} {'questions':>9} " + " ".join(f"{'R@' + str(k):>6}" for k in KS)
          + f" {'seconds':>8}")
    for r in results:
        print(f"{r.name:<40} {r.questions:>9} " + " ".join(f"{r.at(k):>6.3f}" for k in KS)
              + f" {r.seconds:>8.1f}")
    if args.locomo is None:
        print("LoCoMo-10: pass --locomo PATH (or LOCOMO=PATH to make eval-memory) to add it")


if __name__ == "__main__":
    main()
