"""`make run`: start the suite, print the base URL and key, and stop everything on Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time

from switchboard_stack import Stack, StackConfig, banner


def main() -> None:
    config = StackConfig.from_env()
    stack = Stack(config, on_progress=lambda line: print(f"  ✓ {line}", flush=True))
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"Starting Switchboard (data in {stack.data_dir}, logs in {stack.logs})", flush=True)
    try:
        stack.start()
    except RuntimeError as exc:
        print(f"\nSwitchboard failed to start:\n{exc}", file=sys.stderr)
        sys.exit(1)
    failed = False
    try:  # whatever happens from here on, the children are stopped
        print(banner.render(stack), flush=True)
        while not stopping:
            if dead := stack.dead():
                tails = "\n".join(f"--- {name}, last lines of this run ---\n{stack.log_tail(name)}"
                                  for name in dead)
                print(f"\n{', '.join(dead)} stopped unexpectedly (logs in {stack.logs}):\n{tails}",
                      file=sys.stderr)
                failed = True
                break
            time.sleep(0.5)
    finally:
        print("\nStopping...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
