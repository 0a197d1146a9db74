"""`make run`: start the suite, print the base URL and key, and stop everything on Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time

from switchboard_stack import Stack, StackConfig


def main() -> None:
    config = StackConfig.from_env()
    stack = Stack(config, on_progress=lambda line: print(f"  ✓ {line}", flush=True))
    stopping = False

    def request_stop(*_) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"Starting Switchboard (data in {config.data_dir.resolve()}, logs in {config.data_dir.resolve() / 'logs'})", flush=True)
    try:
        stack.start()
    except RuntimeError as exc:
        print(f"\nSwitchboard failed to start:\n{exc}", file=sys.stderr)
        sys.exit(1)
    key_note = " (generated now, kept in the data dir)" if stack.master_key_created else ""
    print(f"""
Switchboard is running.
  Base URL:   {stack.base_url}
  Master key: {stack.master_key}{key_note}

  curl {stack.base_url}/chat/completions -H "Authorization: Bearer {stack.master_key}" \\
    -H "Content-Type: application/json" \\
    -d '{{"model": "switchboard-local", "messages": [{{"role": "user", "content": "Hello"}}]}}'

Press Ctrl-C to stop.""", flush=True)
    failed = False
    while not stopping:
        if dead := stack.dead():
            print(f"\n{', '.join(dead)} stopped unexpectedly; see {stack.logs}", file=sys.stderr)
            failed = True
            break
        time.sleep(0.5)
    print("\nStopping...", flush=True)
    stack.stop()
    print("Stopped.", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
