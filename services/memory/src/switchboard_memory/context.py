"""BuildContext: the messages a request with a session or a collection sends to its provider.

Order: the system prompt (the request's, else the session's), a summary of older turns, excerpts
of relevant older turns, the newest turns verbatim, the collection's chunks with their source
ids, then the request's own messages. The request's messages are never cut; the budget is the
model's window less the answer's reserve, the request itself and the chunks, capped by the
history limit; oldest turns are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard_common.errors import InvalidRequest

from switchboard_memory import conversation, window
from switchboard_memory.collections import Collections
from switchboard_memory.domain import Hit, Message, Turn
from switchboard_memory.sessions import Sessions, check_id
from switchboard_memory.settings import MemorySettings
from switchboard_memory.tokens import REPLY_PRIMING, TokenCounter

SUMMARY_INTRO = "Summary of the earlier conversation:"
RECALL_INTRO = "Relevant excerpts from earlier in this conversation:"
RAG_INTRO = ("Use the following context to answer when it is relevant. Each passage starts with "
             "its source id in brackets; cite the ids you use.")


@dataclass(frozen=True)
class ContextRequest:
    tenant_id: str
    messages: list[Message]
    session_id: str = ""
    rag_collection: str = ""
    rag_top_k: int = 0
    model: str = ""
    context_window_tokens: int = 0
    reserve_output_tokens: int = 0
    extra_prompt_tokens: int = 0
    max_history_tokens: int | None = None
    recall_top_k: int | None = None
    exclude_chunk_ids: tuple[str, ...] = ()


@dataclass
class Context:
    messages: list[Message]
    history_messages: int = 0
    history_turns: int = 0
    recalled_turns: int = 0
    dropped_turns: int = 0
    summary_used: bool = False
    chunks: list[Hit] = field(default_factory=list)
    prompt_tokens: int = 0
    history_tokens: int = 0


class ContextBuilder:
    def __init__(self, sessions: Sessions, collections: Collections, tokens: TokenCounter,
                 settings: MemorySettings) -> None:
        self._sessions = sessions
        self._collections = collections
        self._tokens = tokens
        self._settings = settings

    async def build(self, req: ContextRequest) -> Context:
        if not req.session_id and not req.rag_collection:
            raise InvalidRequest("BuildContext needs a session_id or a rag_collection.",
                                 param="session_id", code="invalid_value")
        system, rest = conversation.split_system(req.messages)
        query = conversation.last_user_text(rest)
        count = lambda m: self._tokens.message(m, req.model)  # noqa: E731 - a local shorthand
        budget = (self._window(req) - self._reserve(req) - req.extra_prompt_tokens
                  - REPLY_PRIMING - sum(count(m) for m in req.messages))
        chunks, rag_message = await self._rag(req, query, budget, count)
        budget -= count(rag_message) if rag_message else 0
        out = Context(messages=[])
        history: list[Message] = []
        if req.session_id:
            check_id(req.session_id, "session_id")
            limit = (self._settings.max_history_tokens if req.max_history_tokens is None
                     else max(req.max_history_tokens, 0))
            history, stored_system = await self._history(req, rest, query, min(budget, limit),
                                                         count, out)
            if not system and stored_system:
                system = [{"role": "system", "content": stored_system}]
        out.messages = [*system, *history, *([rag_message] if rag_message else []), *rest]
        out.chunks = chunks
        out.prompt_tokens = REPLY_PRIMING + sum(count(m) for m in out.messages)
        return out

    def _window(self, req: ContextRequest) -> int:
        return req.context_window_tokens or self._settings.default_context_window_tokens

    def _reserve(self, req: ContextRequest) -> int:
        return req.reserve_output_tokens or self._settings.default_reserve_output_tokens

    async def _rag(self, req: ContextRequest, query: str, budget: int,
                   count) -> tuple[list[Hit], Message | None]:
        if not req.rag_collection:
            return [], None
        hits = await self._collections.query(req.tenant_id, req.rag_collection, query or " ",
                                             req.rag_top_k, exclude=req.exclude_chunk_ids)
        while hits:  # the lowest-ranked chunks go first when the passages overflow the budget
            message = {"role": "system", "content": "\n\n".join(
                [RAG_INTRO, *(f"[{h.chunk_id}]\n{h.text}" for h in hits)])}
            if count(message) <= budget:
                return hits, message
            hits = hits[:-1]
        return [], None

    async def _history(self, req: ContextRequest, rest: list[Message], query: str, budget: int,
                       count, out: Context) -> tuple[list[Message], str]:
        recall_k = (self._settings.recall_top_k if req.recall_top_k is None
                    else max(req.recall_top_k, 0))
        session, turns = await self._sessions.history(req.tenant_id, req.session_id,
                                                      vectors=recall_k > 0)
        if session is None:
            return [], ""
        # Messages the client resent (the whole conversation each time) are in `rest` already.
        resent = conversation.overlap([m for t in turns for m in t.messages], rest)
        while resent and turns and len(turns[-1].messages) <= resent:
            resent -= len(turns[-1].messages)
            turns = turns[:-1]
        # Stored counts are o200k_base's: reused when that is the model's encoding too.
        stored = self._tokens.encoding(req.model) is self._tokens.encoding()
        cost = (lambda t: t.tokens) if stored else (lambda t: sum(count(m) for m in t.messages))
        summary = self._summary_message(session.summary) if session.summary else None
        summary_tokens = count(summary) if summary else 0
        win = window.newest_fitting(turns, max(budget, 0), cost)
        older = turns[:len(turns) - len(win.turns)]
        covered = {t.turn_id for t in older
                   if session.summary_through and t.order <= session.summary_through}
        use_summary = bool(summary and covered and summary_tokens <= budget)
        if use_summary:
            win = window.newest_fitting(turns, budget - summary_tokens, cost)
            older = turns[:len(turns) - len(win.turns)]
        recalled, excerpt = await self._recall(older, query, recall_k, win, budget, cost, count,
                                               summary_tokens if use_summary else 0)
        if excerpt is not None and recalled:
            win = window.newest_fitting(win.turns, budget - count(excerpt)
                                        - (summary_tokens if use_summary else 0), cost)
        shown = {t.turn_id for t in win.turns} | {t.turn_id for t in recalled}
        messages = ([summary] if use_summary and summary else []) + (
            [excerpt] if excerpt and recalled else []) + [m for t in win.turns for m in t.messages]
        out.history_messages = sum(len(t.messages) for t in win.turns) + sum(
            len(t.messages) for t in recalled)
        out.history_turns = len(win.turns) + len(recalled)
        out.recalled_turns = len(recalled)
        out.summary_used = use_summary
        out.dropped_turns = sum(1 for t in turns if t.turn_id not in shown
                                and not (use_summary and t.turn_id in covered))
        out.history_tokens = sum(count(m) for m in messages)
        return messages, session.system_prompt

    async def _recall(self, older: list[Turn], query: str, k: int, win, budget: int, cost, count,
                      reserved: int) -> tuple[list[Turn], Message | None]:
        if k <= 0 or not older or not query:
            return [], None
        embedder = self._sessions.embedder
        vector = (await embedder.embed([query]))[0]
        picked = window.relevant(older, query, vector, k, embedder.dimensions)
        while picked:
            in_order = sorted(picked, key=lambda t: t.order)
            excerpt = {"role": "system", "content": "\n\n".join(
                [RECALL_INTRO, *(conversation.render(t) for t in in_order)])}
            if count(excerpt) + reserved <= budget // 2:  # at most half the history budget
                return in_order, excerpt
            picked = picked[:-1]  # the least relevant goes first
        return [], None

    @staticmethod
    def _summary_message(summary: str) -> Message:
        return {"role": "system", "content": f"{SUMMARY_INTRO}\n{summary}"}
