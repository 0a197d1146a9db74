"""`.venv/bin/python -m bench.provider_call`: the router's instructions per provider call
(upstream.Upstream: the aiohttp post and its body, whole or streamed), counted by valgrind's
callgrind against the fake OpenAI API in its own process.

The router's `make bench-instructions` counts the whole request (~2M instructions); this counts
the provider call alone, so a change to upstream.py shows in its own figure. Each mode runs
twice under callgrind, with a few calls and with BENCH_CALL_REQUESTS more; the difference over
the extra calls is the cost of one call, start-up and imports cancelled out.

Environment: BENCH_CALL_REQUESTS=1000, BENCH_CALL_CONCURRENCY=4, BENCH_CALL_MODES=non-stream,stream.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from bench.upstream import REPO, FakeUpstream

_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
_BASE_CALLS = 100  # the shorter run: warms the pool and every code path once


async def _calls(base_url: str, mode: str, calls: int, concurrency: int) -> None:
    import uvloop  # noqa: F401  (the router runs on it)
    from switchboard_router.upstream import Attempt, Upstream

    upstream = Upstream(pool_size=1000, per_host=256)
    await upstream.start()
    url = f"{base_url}/chat/completions"
    # As the OpenAI codec sends them: one dict per deployment, reused by every call.
    headers = {"Content-Type": "application/json", "User-Agent": "switchboard-router",
               "Authorization": "Bearer sk-bench"}
    body: dict = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}],
                  "max_tokens": 64}
    if mode == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    data = orjson.dumps(body)
    attempt = Attempt(total=60.0, connect=10.0, read=60.0)

    async def one() -> None:
        if mode == "stream":
            response = await upstream.open_stream(url, headers, data, attempt)
            try:
                assert response.status == 200, response.status
                async for _ in response.reads():
                    pass
            finally:
                response.finish()
        else:
            status, _, answer = await upstream.post(url, headers, data, attempt)
            assert status == 200 and answer, status

    async def worker(n: int) -> None:
        for _ in range(n):
            await one()

    share, extra = divmod(calls, concurrency)
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))
    await upstream.close()


def _child(base_url: str, mode: str, calls: int, concurrency: int) -> None:
    import uvloop

    uvloop.run(_calls(base_url, mode, calls, concurrency))


def _instructions(base_url: str, mode: str, calls: int, concurrency: int, tmp: Path) -> int:
    out = tmp / f"callgrind.{mode}.{calls}"
    subprocess.run(["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-line=no",
                    f"--callgrind-out-file={out}", sys.executable, "-m", "bench.provider_call",
                    "--child", base_url, mode, str(calls), str(concurrency)],
                   cwd=REPO, check=True, capture_output=True)
    keep = os.environ.get("BENCH_CALL_KEEP")
    if keep:  # for callgrind_annotate
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(keep) / out.name)
    totals = _TOTALS.search(out.read_bytes())
    if totals is None:
        sys.exit(f"bench.provider_call: no instruction total in {out}")
    return int(totals.group(1))


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench.provider_call needs valgrind (Debian: apt-get install valgrind)")
    requests = int(os.environ.get("BENCH_CALL_REQUESTS", "1000"))
    concurrency = int(os.environ.get("BENCH_CALL_CONCURRENCY", "4"))
    modes = [m.strip() for m in os.environ.get("BENCH_CALL_MODES", "non-stream,stream").split(",")
             if m.strip()]
    print("| mode | router instructions / provider call |\n|---|---:|")
    with FakeUpstream(core=None) as fake, \
            tempfile.TemporaryDirectory(prefix="switchboard-call-") as tmp:
        for mode in modes:
            few = _instructions(fake.base_url, mode, _BASE_CALLS, concurrency, Path(tmp))
            many = _instructions(fake.base_url, mode, _BASE_CALLS + requests, concurrency, Path(tmp))
            print(f"| {mode} | {(many - few) / requests:,.0f} |", flush=True)
    print(f"\n({requests} calls at concurrency {concurrency} over a run of {_BASE_CALLS}, "
          "callgrind)", file=sys.stderr)


if __name__ == "__main__":
    main()
