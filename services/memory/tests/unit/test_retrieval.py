"""BM25, the hybrid fusion and the in-memory index: rows found by words and meaning, deleted rows
gone at once, candidates respected."""

from __future__ import annotations

import numpy as np

from switchboard_memory.retrieval import analysis, hybrid
from switchboard_memory.retrieval.bm25 import BM25
from switchboard_memory.retrieval.index import HybridIndex


def test_terms_are_stemmed_without_stop_words():
    assert analysis.terms("What did she adopt? The adopted dogs!") == ["adopt", "adopt", "dog"]


def test_bm25_scores_the_matching_row_and_forgets_dead_rows():
    index = BM25()
    index.add([["refund", "polici"], ["shipe", "time"], ["refund", "refund", "window"]])
    scores = index.scores(["refund"])
    assert scores[1] == 0 and scores[2] > scores[0] > 0
    alive = np.array([True, True, False])
    assert index.scores(["refund"], alive)[2] == 0


def test_fusion_weighs_words_and_meaning_equally():
    fused = hybrid.fuse(np.array([4.0, 0.0, 2.0]), np.array([0.0, 0.9, 0.5]))
    assert np.allclose(fused, [0.5, 0.45, 0.5])
    assert list(hybrid.top(fused, 2)) == [0, 2]
    assert list(hybrid.top(fused, 5, np.array([False, True, False]))) == [1]


def test_the_index_finds_by_words_removes_and_honours_candidates():
    index = HybridIndex(dimensions=2)
    index.add(["a", "b", "c"], ["the refund window is 30 days", "shipping takes a week",
                                "refunds need a receipt"],
              np.array([[1, 0], [0, 1], [0.7, 0.7]], dtype=np.float32))
    found = index.search("refund", np.array([1, 0], dtype=np.float32), 2)
    assert [s.key for s in found] == ["a", "c"]
    index.remove(["a"])
    assert [s.key for s in index.search("refund", np.array([1, 0], np.float32), 3)] == ["c", "b"]
    mask = np.zeros(index.rows(), dtype=bool)
    mask[index.row_of("b")] = True
    assert [s.key for s in index.search("refund", np.array([1, 0], np.float32), 3, mask)] == ["b"]
