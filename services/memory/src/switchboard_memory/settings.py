"""Memory settings, read once from the environment (prefix SWITCHBOARD_MEMORY_)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard_common.settings import CommonSettings

DATABASE_FILE = "memory.db"


class MemorySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_MEMORY_", frozen=True, extra="ignore")

    grpc_port: int = 50055
    # sqlite:///<data_dir>/memory.db unless set; postgresql://... in production.
    database_url: str = ""

    # Who may manage sessions and collections: auth's Authorize answers for the caller's key.
    auth_target: str = "127.0.0.1:50052"
    auth_timeout_seconds: float = 2.0
    auth_cache_seconds: float = 30.0

    # Session memory: the budget when the router names no context window, and its parts.
    default_context_window_tokens: int = Field(8192, ge=256)
    default_reserve_output_tokens: int = Field(1024, ge=0)
    max_history_tokens: int = Field(8000, ge=0)  # at most this much history; 0: no history
    recall_top_k: int = Field(4, ge=0, le=64)  # older turns put back for their relevance
    # Retention: a session idle this long is deleted (0: kept until deleted); at most this many
    # turns are kept, the oldest deleted first.
    session_ttl_seconds: int = Field(30 * 86400, ge=0)
    session_max_turns: int = Field(1000, ge=1, le=100_000)
    retention_sweep_seconds: float = Field(300.0, gt=0)
    # Stored responses (/v1/responses with store): deleted this long after they were first stored
    # (30 days, as OpenAI keeps them; 0: kept until deleted), by the same sweep. A request may
    # continue a chain of at most this many responses.
    response_ttl_seconds: int = Field(30 * 86400, ge=0)
    response_chain_max: int = Field(1000, ge=1, le=100_000)

    # Optional summaries of older turns, made by a model through the gateway's own
    # /v1/chat/completions with summary_key (off while summary_model is empty).
    summary_model: str = ""
    summary_trigger_tokens: int = Field(6000, ge=256)  # unsummarized history that triggers one
    summary_keep_tokens: int = Field(2000, ge=0)  # newest history left out of the summary
    summary_max_tokens: int = Field(512, ge=16, le=8192)  # the summary's own length
    # The gateway (the edge's /v1) for summaries and for collections embedded by a served model.
    gateway_url: str = ""  # e.g. http://127.0.0.1:8080/v1
    gateway_key: SecretStr = SecretStr("")
    gateway_timeout_seconds: float = Field(60.0, gt=0)

    # RAG collections.
    default_embedding_model: str = "paraphrase-MiniLM-L3-v2"
    chunk_tokens: int = Field(256, ge=16, le=8192)
    chunk_overlap_tokens: int = Field(32, ge=0)
    rag_top_k: int = Field(5, ge=1, le=100)
    max_top_k: int = Field(100, ge=1, le=1000)
    # AddDocuments answers after this long with the ingestion still running (below the edge's
    # 30 s route timeout); GetIngestion follows it.
    ingest_wait_seconds: float = Field(20.0, ge=0)
    ingest_batch_documents: int = Field(64, ge=1)
    # Collections whose index stays in memory (vectors and BM25 postings), least recently used
    # evicted first, and the chunks they may hold together.
    index_cache_chunks: int = Field(1_000_000, ge=1000)
    embed_threads: int = Field(1, ge=1, le=64)

    @model_validator(mode="before")
    @classmethod
    def _default_database_url(cls, values: Any) -> Any:
        # Derived before validation because the settings are frozen; the data directory may come
        # from the environment, so the default cannot be a constant.
        if isinstance(values, dict) and not values.get("database_url"):
            data_dir = values.get("data_dir") or cls.model_fields["data_dir"].default
            values = {**values, "database_url": f"sqlite:///{Path(data_dir) / DATABASE_FILE}"}
        return values

    @model_validator(mode="after")
    def _consistent(self) -> MemorySettings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError("chunk_overlap_tokens must be less than chunk_tokens")
        if self.summary_model and not self.gateway_url:
            raise ValueError("summary_model needs gateway_url (the edge's /v1) to reach it")
        if self.summary_keep_tokens >= self.summary_trigger_tokens:
            raise ValueError("summary_keep_tokens must be less than summary_trigger_tokens")
        return self
