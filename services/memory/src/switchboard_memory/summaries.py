"""Optional summaries of older turns, made by a configured model through the gateway's own
/v1/chat/completions, after a turn is stored and never on a request's path.

When a session's turns outside the summary pass `summary_trigger_tokens`, the oldest of them are
folded into the running summary (LangChain's summary buffer, by tokens) until at most
`summary_keep_tokens` remain outside it. One summary per session at a time in this process; a
summary made from a state another replica has moved past is not recorded.
"""

from __future__ import annotations

import asyncio

import structlog

from switchboard_memory import conversation
from switchboard_memory.gateway_client import GatewayClient
from switchboard_memory.session_repository import SessionRepository
from switchboard_memory.settings import MemorySettings
from switchboard_memory.domain import utc_now

_log = structlog.get_logger("summaries")
INSTRUCTIONS = (
    "You keep a running summary of a conversation between a user and an assistant. Merge the "
    "new turns into the summary. Keep every fact the user stated about themselves or their "
    "task (names, numbers, dates, preferences, decisions) and what the assistant committed to; "
    "drop pleasantries. Write plain sentences, at most {words} words. Answer with the summary "
    "only.")


class Summarizer:
    def __init__(self, repo: SessionRepository, gateway: GatewayClient,
                 settings: MemorySettings) -> None:
        self._repo = repo
        self._gateway = gateway
        self._settings = settings
        self._running: dict[tuple[str, str], asyncio.Task] = {}

    def schedule(self, tenant_id: str, session_id: str) -> None:
        key = (tenant_id, session_id)
        if key in self._running:
            return
        task = asyncio.create_task(self._summarize(tenant_id, session_id))
        self._running[key] = task
        task.add_done_callback(lambda _: self._running.pop(key, None))

    async def _summarize(self, tenant_id: str, session_id: str) -> None:
        try:
            session = await self._repo.get(tenant_id, session_id, utc_now())
            if session is None:
                return
            turns = [t for t in await self._repo.turns(tenant_id, session_id)
                     if session.summary_through is None or t.order > session.summary_through]
            if sum(t.tokens for t in turns) <= self._settings.summary_trigger_tokens:
                return
            fold, left = [], sum(t.tokens for t in turns)
            for turn in turns:
                if left <= self._settings.summary_keep_tokens:
                    break
                fold.append(turn)
                left -= turn.tokens
            text = await self._gateway.chat(self._settings.summary_model, [
                {"role": "system", "content": INSTRUCTIONS.format(
                    words=self._settings.summary_max_tokens * 3 // 4)},
                {"role": "user", "content": "Current summary:\n" + (session.summary or "(none)")
                 + "\n\nNew turns:\n\n" + "\n\n".join(conversation.render(t) for t in fold)},
            ], self._settings.summary_max_tokens)
            if text.strip():
                recorded = await self._repo.set_summary(tenant_id, session_id, text.strip(),
                                                        fold[-1].order, session.summary_through)
                _log.info("session summarized", turns=len(fold), recorded=recorded)
        except Exception as exc:  # noqa: BLE001 - a failed summary is retried after the next turn
            _log.warning("summary failed", error=type(exc).__name__,
                         reason=getattr(exc, "message", ""))

    async def stop(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
