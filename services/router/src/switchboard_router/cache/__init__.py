"""The response cache: exact-match answers for requests that opt in (x-switchboard-cache: on, or
`cache: true` on the model group in switchboard.yaml), keyed by the request's canonical form and
its tenant (keys.py), in memory or Redis (stores.py).

Cheap when off: unless the request sent the header or its group caches by default, `plan`
returns None after two attribute reads and one dict lookup, and nothing is hashed. Only complete,
successful answers whose provider reported their tokens are stored, as the bytes the client got.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Counter
from switchboard_common.errors import ApiError, InvalidRequest

from switchboard_router.cache.config import CacheConfig
from switchboard_router.cache.directives import CACHE_CONTROL, CACHE_HEADER, directives
from switchboard_router.cache.entry import Entry
from switchboard_router.cache.keys import cache_key
from switchboard_router.cache.stores import Store
from switchboard_router.domain import Endpoint, ParsedRequest, RequestContext, Tokens

__all__ = ["CACHE_CONTROL", "CACHE_HEADER", "CacheConfig", "Entry", "Plan", "Recording",
           "ResponseCache", "backend_errors"]

_log = structlog.get_logger("cache")
CACHED = (Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS)
LOOKUPS = Counter("switchboard_cache_lookups",
                  "Response cache lookups: hit, miss, or refresh (Cache-Control: no-cache)",
                  ["endpoint", "result"])
ERRORS = Counter("switchboard_cache_backend_errors",
                 "Response cache backend calls that failed (each one a miss or a skipped write)",
                 ["operation"])


@dataclass(frozen=True, slots=True)
class Plan:
    """The cache's part in one request."""

    key: str
    endpoint: Endpoint
    read: bool
    write: bool


class ResponseCache:
    def __init__(self, config: CacheConfig, store: Store,
                 group: Callable[[str], tuple[str, bool]], *, metrics: bool = False) -> None:
        self.config = config
        self._store = store
        self._group = group  # model name -> (its group's name, whether it caches by default)
        self._metrics = metrics  # a router without a metrics port counts nothing
        self._writes: set[asyncio.Task] = set()

    def plan(self, ctx: RequestContext, request: ParsedRequest, tenant_id: str,
             pipelined: Callable[[], bool], *, keyed: bool = False) -> Plan | None:
        """None when the cache takes no part (and nothing was hashed). Raises a 400 for a bad
        x-switchboard-cache value, or `on` where no answer can be cached. `pipelined` says
        whether guardrails or memory take part (asked only once the cache would); `keyed`, that
        the caller's key (or its tenant) caches by default."""
        switch = ctx.cache_switch
        try:
            name, default = self._group(request.model)
        except ApiError:  # an unknown model: the request fails on its own further on
            if switch is None:
                return None
            name, default = request.model, False
        default = default or keyed
        if switch is None and not default:
            return None
        wanted = directives(switch, ctx.cache_control, default)
        if wanted is None:
            return None
        if request.endpoint not in CACHED or pipelined():
            if switch is None:
                return None  # a group default does not apply where answers cannot be cached
            raise InvalidRequest(
                f"{CACHE_HEADER}: on is not available for this request: answers are cached for "
                "chat completions, completions and embeddings without a guardrail policy, "
                "session_id or rag_collection.", param=CACHE_HEADER, code="cache_not_applicable")
        key = cache_key(request.endpoint, tenant_id, name, request.body, request.stream,
                        ctx.native_body, ctx.allowed_models)
        return Plan(key=key, endpoint=request.endpoint, read=wanted.read, write=wanted.write)

    async def get(self, plan: Plan) -> Entry | None:
        entry = await self._store.get(plan.key) if plan.read else None
        if self._metrics:
            result = "refresh" if not plan.read else "hit" if entry is not None else "miss"
            LOOKUPS.labels(plan.endpoint.value, result).inc()
        return entry

    def keep(self, plan: Plan, data: bytes, stream: bool, tokens: Tokens | None,
             native: bool = False) -> None:
        """Store a complete, successful answer, off the client's path. One whose provider did not
        report its tokens is not kept: a hit must record the counts the answer really had.
        `native`: the answer is in Anthropic's format (passed through), replayed as such."""
        if not plan.write or tokens is None or len(data) > self.config.max_entry_bytes:
            return
        entry = Entry(data=data, stream=stream, tokens=tokens, native=native)
        task = asyncio.get_running_loop().create_task(self._store.put(plan.key, entry))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def recording(self, plan: Plan | None) -> Recording | None:
        return Recording(self.config.max_entry_bytes) if plan is not None and plan.write else None

    async def settle(self, timeout: float = 1.0) -> None:
        """Wait for the writes under way (at shutdown, so the last answers are kept)."""
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=timeout)

    async def close(self) -> None:
        await self.settle()
        await self._store.close()


def backend_errors(metrics: bool) -> Callable[[str], None]:
    """What a store calls for each failed backend call (operation: get, put)."""
    if not metrics:
        return lambda operation: None
    return lambda operation: ERRORS.labels(operation).inc()


class Recording:
    """A stream's bytes as the client receives them, kept until `max_bytes` (then given up)."""

    __slots__ = ("_max", "_parts", "_size", "full")

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self.full = False

    def add(self, data: bytes) -> None:
        if self.full:
            return
        self._size += len(data)
        if self._size > self._max:
            self.full, self._parts = True, []
        else:
            self._parts.append(data)

    def data(self) -> bytes | None:
        return None if self.full else b"".join(self._parts)
