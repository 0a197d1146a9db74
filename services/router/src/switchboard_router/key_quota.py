"""What this replica holds of one key's rate limits, and how that reads to the caller: OpenAI's
429 for a key over its limit, and the x-ratelimit-* headers. limits.py does the leasing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from switchboard_common.caller import RateLimits
from switchboard_common.errors import RateLimited


class KeyRateLimited(RateLimited):
    """429 for a key over its own limit, in OpenAI's shape: type "requests" or "tokens", with
    Retry-After and the x-ratelimit-* headers."""

    def __init__(self, message: str, *, kind: str, retry_after: int,
                 headers: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message, code="rate_limit_exceeded", retry_after=retry_after)
        self.error_type = kind
        self.headers = headers

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return (*super().trailing_metadata(), *self.headers)


@dataclass(slots=True)
class KeyQuota:
    """What this replica holds of one key's limits, for auth's current windows."""

    key_id: str
    tenant_id: str
    limits: RateLimits  # what auth last leased against
    seen: RateLimits  # what the last verdict said (a verdict with other limits starts over)
    window_start: float = 0.0  # Unix seconds; 0: nothing leased in a live window
    window_end: float = 0.0
    day_end: float = 0.0
    requests: int = 0  # held and unspent, in the window
    tokens: int = 0
    parallel_held: int = 0
    parallel_busy: int = 0
    parallel_renewed: float = 0.0  # monotonic time of the last lease (which renews the slots)
    requests_spent_until: float = 0.0  # auth said the minute's requests are gone: until then
    tokens_spent_until: float = 0.0  # the minute's (or the day's) tokens
    requests_left: int | None = None  # auth's figure for every replica, after the last grant
    tokens_left: int | None = None
    tokens_left_today: int | None = None
    used: float = 0.0  # monotonic time of the last request
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Tokens reserved by this window's requests in flight, and a wake-up when one settles (what
    # its estimate held beyond its real count comes back for the requests waiting on it).
    reserved_tokens: int = 0
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def headers(self, now: float) -> tuple[tuple[str, str], ...]:
        """OpenAI's x-ratelimit-* for the limits the key has: remaining is what auth had left
        for every replica at this replica's last lease, plus what this replica holds."""
        limits, out = self.limits, []
        if limits.requests_per_minute is not None:
            left = (self.requests_left or 0) + max(0, self.requests)
            out += [("x-ratelimit-limit-requests", str(limits.requests_per_minute)),
                    ("x-ratelimit-remaining-requests", str(left)),
                    ("x-ratelimit-reset-requests", _duration(self.window_end - now))]
        if limits.tokens_per_minute is not None:
            left = (self.tokens_left or 0) + max(0, self.tokens)
            out += [("x-ratelimit-limit-tokens", str(limits.tokens_per_minute)),
                    ("x-ratelimit-remaining-tokens", str(left)),
                    ("x-ratelimit-reset-tokens", _duration(self.window_end - now))]
        elif limits.tokens_per_day is not None:
            left = (self.tokens_left_today or 0) + max(0, self.tokens)
            out += [("x-ratelimit-limit-tokens", str(limits.tokens_per_day)),
                    ("x-ratelimit-remaining-tokens", str(left)),
                    ("x-ratelimit-reset-tokens", _duration(self.day_end - now))]
        return tuple(out)


@dataclass(slots=True)
class Ticket:
    """One admitted request's share: what it reserved, to settle when it ends."""

    quota: KeyQuota
    window_start: float
    tokens: int  # reserved
    parallel: bool
    headers: tuple[tuple[str, str], ...]
    released: bool = False
    settled: bool = False


def _duration(seconds: float) -> str:
    """OpenAI's reset format: "20ms", "17s", "6m0s"."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.2g}s"
    if round(seconds) < 60:
        return f"{round(seconds)}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{rest}s" if hours else f"{minutes}m{rest}s"
