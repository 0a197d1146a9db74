"""switchboard.yaml's `cache:` section: where cached answers live, how long and how many.

Its own module so config.py only names the section; validated like the rest of the file
(an unknown key is an error naming its path)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["memory", "redis"] = "memory"
    ttl_seconds: int = Field(3600, ge=1, le=30 * 86_400)
    # The memory backend's bound on entries; Redis bounds itself (maxmemory and its eviction
    # policy), so with `backend: redis` this is refused rather than ignored.
    max_entries: int | None = Field(None, ge=1, le=10_000_000)
    # An answer larger than this is served but not stored.
    max_entry_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # The memory backend's bound on the bytes of its answers (with max_entries: both hold).
    max_bytes: int | None = Field(None, ge=1024 * 1024, le=1024 ** 4)
    redis_url: str | None = None  # redis://host:port/db (rediss:// for TLS); ${REDIS_URL} works
    # How long a Redis call may take before it counts as an outage (a miss; never a failure).
    redis_timeout_seconds: float = Field(0.25, gt=0, le=10)

    @model_validator(mode="after")
    def _backend_fields(self) -> CacheConfig:
        if self.backend == "redis":
            if not self.redis_url:
                raise ValueError("backend redis needs redis_url (such as redis://127.0.0.1:6379/0)")
            if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("redis_url must be a redis://, rediss:// or unix:// URL")
            if self.max_entries is not None or self.max_bytes is not None:
                raise ValueError("max_entries and max_bytes bound the memory backend only; bound "
                                 "Redis with its maxmemory setting")
        elif self.redis_url is not None:
            raise ValueError("redis_url is read by backend redis only")
        return self

    @property
    def entries(self) -> int:
        return self.max_entries or 10_000

    @property
    def bytes(self) -> int:
        return self.max_bytes or 256 * 1024 * 1024
