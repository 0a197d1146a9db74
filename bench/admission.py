"""Admission's cost with 1 and with 100,000 keys: the router's in-process admission (a verdict
cache hit and the rate limits' bookkeeping) with 1 and 100,000 verdicts cached, CPU-bound, so
the fastest of many short batches is kept; and with 1 and 100,000 keys in auth's
database, the common request through
the gateway with a key that has rate limits set (its verdict cached, its quota leased in
slices), and auth's own Authorize (a verdict cache miss) and LeaseQuota (a slice) called straight
over gRPC. Run by `python -m bench` after the main table, on the stack it started.

BENCH_KEYS=100000 keys are added straight into auth's SQLite file (rows as auth writes them,
random hashes nobody presents): the admin API would take an hour for that many on this machine.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import grpc
import orjson
from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_common.admission import Admission, VerdictCache, key_digest
from switchboard_common.auth_client import Grant
from switchboard_common.caller import Caller, RateLimits
from switchboard_router.limits import Limiter

from bench import cpu
from bench.load import ClosedLoop, Workload

# Requests and tokens per minute and tokens per day (max_parallel_requests costs a lease and a
# return per request by design, so it is not the common request; services/router/README.md).
LIMITS = {"requests_per_minute": 10_000_000, "tokens_per_minute": 2_000_000_000,
          "tokens_per_day": 10_000_000_000_000}
RPC_CALLS = 300


@dataclass(frozen=True)
class Figures:
    keys: int
    rps: float
    p50_ms: float | None
    cpu_us: float | None
    authorize_p50_ms: float
    lease_p50_ms: float


async def _create_key(edge_url: str, master_key: str) -> tuple[str, str]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{edge_url}/api/keys", json={"name": "bench-limited",
                                                              "rate_limits": LIMITS},
                                headers={"authorization": f"Bearer {master_key}"}) as resp:
            body = await resp.json()
            if resp.status != 200:
                sys.exit(f"bench: creating the limited key answered {resp.status}: {body}")
    return body["secret"], body["key"]["key_id"]


async def _rpc_p50(call, calls: int = RPC_CALLS) -> float:
    for _ in range(20):  # warm the channel and auth's statement cache
        await call()
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        took.append(time.perf_counter() - started)
    return round(statistics.median(took) * 1000, 3)


def seed_keys(database: Path, count: int) -> None:
    """`count` member keys of the default tenant, with their hashed secrets."""
    from sqlalchemy import create_engine  # only the bench writes auth's file directly

    from switchboard_auth.tables import key_secrets, keys

    now = datetime.now(UTC)
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 60})
    try:
        with engine.begin() as conn:
            for start in range(0, count, 10_000):
                ids = [f"key_bench{start + i:07d}" for i in range(min(10_000, count - start))]
                conn.execute(keys.insert(), [{
                    "key_id": key_id, "name": key_id, "tenant_id": "default", "user_id": "",
                    "role": "member", "key_prefix": "sk-sb-Be", "key_hint": "sk-sb-Be...nch0",
                    "allowed_models": [], "guardrail_policy_ids": [], "created_at": now,
                    "metadata": {}} for key_id in ids])
                conn.execute(key_secrets.insert(), [{
                    "secret_hash": secrets.token_hex(32), "key_id": key_id, "created_at": now}
                    for key_id in ids])
    finally:
        engine.dispose()


async def measure_once(edge_url: str, auth_target: str, pids: tuple[int, ...], secret: str,
                       key_id: str, body: bytes, keys_now: int, seconds: float,
                       warmup: float) -> Figures:
    work = Workload(f"{edge_url}/v1/chat/completions", body,
                    {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
                    False)
    meter = cpu.CpuMeter(pids)
    async with ClosedLoop(work, 1) as load:
        await load.run(warmup, 1_000_000)
        meter.start()
        measured = await load.run(seconds, 1_000_000)
        spent = meter.stop()
    if measured.errors:
        sys.exit(f"bench: the limited key failed: {measured.first_error}")
    async with grpc.aio.insecure_channel(auth_target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        authorize = await _rpc_p50(lambda: stub.Authorize(
            auth_pb2.AuthorizeRequest(key=secret), timeout=10))
        lease = await _rpc_p50(lambda: stub.LeaseQuota(auth_pb2.LeaseQuotaRequest(
            key_id=key_id, replica_id="bench", requests=1, tokens=1), timeout=10))
    return Figures(keys=keys_now, rps=round(measured.rps, 1),
                   p50_ms=measured.latency_ms(50),
                   cpu_us=round(1e6 * spent / measured.requests, 1) if measured.requests else None,
                   authorize_p50_ms=authorize, lease_p50_ms=lease)


async def run(edge_url: str, auth_target: str, data_dir: Path, master_key: str,
              pids: tuple[int, ...], body: dict, *, keys: int, seconds: float,
              warmup: float) -> list[Figures]:
    secret, key_id = await _create_key(edge_url, master_key)
    raw = orjson.dumps(body)
    out = [await measure_once(edge_url, auth_target, pids, secret, key_id, raw, 1, seconds,
                              warmup)]
    print(f"bench: adding {keys:,} keys to auth's database", file=sys.stderr, flush=True)
    await asyncio.to_thread(seed_keys, data_dir / "auth.db", keys)
    out.append(await measure_once(edge_url, auth_target, pids, secret, key_id, raw, keys + 1,
                                  seconds, warmup))
    return out


class _NoAuth:
    """Never asked: every key measured is cached, every slice already held."""

    async def authorize(self, key: str, model: str = ""):
        raise AssertionError("a cached key asked auth")

    async def lease_quota(self, key_id, replica_id, *, requests=0, tokens=0, parallel=0):
        now = time.time()
        minute = now - now % 60
        return Grant(requests=requests, tokens=tokens, parallel=parallel, parallel_held=0,
                     window_start=minute, window_end=minute + 3600, day_end=minute + 86_400,
                     limits=RateLimits(**LIMITS), requests_remaining=None, tokens_remaining=None,
                     tokens_remaining_today=None)

    async def return_quota(self, *args, **kwargs) -> None:
        return None

    async def charge_tokens(self, *args) -> None:
        return None


async def hot_path_us(cached_keys: int, batches: int = 400) -> tuple[float, float]:
    """The router's in-process admission per request, with `cached_keys` verdicts cached: the
    verdict (a cache hit, model checked) alone, and with the rate limits' reservation and
    settlement; µs per request in the fastest of `batches` batches of 500 requests (the
    machine's other load only adds)."""
    cache = VerdictCache(max(cached_keys, 1))
    far = time.monotonic() + 3600
    for i in range(cached_keys):
        caller = Caller(key_id=f"key_{i}", tenant_id="t", allowed_models=frozenset({"gpt-4o*"}),
                        rate_limits=RateLimits(**LIMITS))
        cache.put(key_digest(f"sk-sb-bench-{i}"), caller, far, None, cache.generation)
    admission = Admission(_NoAuth().authorize, cache, default_ttl=3600, refusal_ttl=5)
    limiter = Limiter(_NoAuth(), "bench")
    keys = [f"sk-sb-bench-{i * 7919 % cached_keys}" for i in range(1000)]
    best_admit = best_both = float("inf")
    gc.collect()  # the cache's build, not its use, made that garbage
    # Many short batches, the fastest kept: a batch the scheduler cut off is simply not it.
    for batch in range(batches):
        chosen = keys[batch % 2 * 500:][:500]
        started = time.perf_counter()
        for key in chosen:
            await admission.admit(key, "gpt-4o-mini")
        best_admit = min(best_admit, (time.perf_counter() - started) / len(chosen))
        started = time.perf_counter()
        for key in chosen:
            caller = await admission.admit(key, "gpt-4o-mini")
            ticket = await limiter.admit(caller, 100)
            limiter.release(ticket)
            limiter.settle(ticket, 90)
        best_both = min(best_both, (time.perf_counter() - started) / len(chosen))
    await limiter.close()
    return round(best_admit * 1e6, 2), round(best_both * 1e6, 2)


def hot_path_markdown(rows: list[tuple[int, float, float]]) -> str:
    lines = ["| verdicts cached | admission µs/req (cache hit, model checked) | "
             "with rate limits µs/req (reserve, release, settle) |", "|---:|---:|---:|"]
    lines += [f"| {n:,} | {a:.2f} | {b:.2f} |" for n, a, b in rows]
    return "\n".join(lines)


def markdown(figures: list[Figures]) -> str:
    lines = ["| keys in auth | gateway req/s (c=1, key with RPM, TPM, TPD) | p50 ms | "
             "CPU µs/req | Authorize p50 ms (cache miss) | LeaseQuota p50 ms (a slice) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for f in figures:
        lines.append(f"| {f.keys:,} | {f.rps:,.0f} | {f.p50_ms or 0:.2f} | "
                     f"{f.cpu_us or 0:,.0f} | {f.authorize_p50_ms:.2f} | {f.lease_p50_ms:.2f} |")
    if len(figures) == 2 and figures[0].p50_ms and figures[1].p50_ms:
        change = 100 * (figures[1].p50_ms / figures[0].p50_ms - 1)
        auth = 100 * (figures[1].authorize_p50_ms / figures[0].authorize_p50_ms - 1)
        lines.append(f"\n{figures[1].keys - 1:,} more keys: gateway p50 {change:+.1f} %, "
                     f"Authorize p50 {auth:+.1f} % (goal: flat within 10 %)")
    return "\n".join(lines)
