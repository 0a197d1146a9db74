"""A quick check of retrieval quality on the generated set (make eval-memory runs the whole set
and LoCoMo): a change that breaks ranking fails here, not only in a report."""

from __future__ import annotations

from switchboard_memory.evaluation.run import evaluate


async def test_planted_facts_are_found_in_sessions_and_collections():
    sessions, rag = await evaluate(None, small=True)
    assert sessions.questions == 20 and rag.questions == 15
    # Measured R@5 / R@10 on this subset (deterministic: seeded set, fixed model): sessions
    # 0.95 / 0.95, RAG 0.80 / 1.00. The bounds leave a question's room, not a broken ranking's.
    assert sessions.at(5) >= 0.9 and sessions.at(10) >= 0.9, sessions
    assert rag.at(5) >= 0.73 and rag.at(10) >= 0.93, rag
