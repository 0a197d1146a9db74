"""The offline embedder: unit vectors in the order given, meaning over wording, long texts read in
windows, and a vocabulary that is not BERT's refused."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from switchboard_memory.embedders import minilm


def test_vectors_are_unit_length_in_order_and_close_for_close_meanings(embedder):
    texts = ["How many days do I have to return an item?", "The car park opens at 7 am.",
             "Returns are accepted within 30 days."]
    v = embedder.embed_sync(texts)
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[2] > v[0] @ v[1] + 0.2
    assert np.allclose(embedder.embed_sync(texts[::-1])[::-1], v, atol=1e-5)


async def test_a_text_past_128_tokens_is_read_to_its_end(embedder):
    filler = "The weather was mild and the meeting ran long. " * 30  # ~300 tokens
    tail = "Parental leave lasts sixteen weeks at full pay."
    (long_vector,) = await embedder.embed([filler + tail])
    (filler_vector, tail_vector) = embedder.embed_sync([filler, tail])
    # The tail beyond the first window still counts: the vector moved towards it.
    assert long_vector @ tail_vector > filler_vector @ tail_vector + 0.05


def test_a_vocabulary_that_is_not_berts_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "vocab.txt.gz"
    fake.write_bytes(gzip.compress(b"[PAD]\n[UNK]\n"))
    monkeypatch.setattr(minilm, "VOCAB", fake)
    with pytest.raises(RuntimeError, match="uncased vocabulary"):
        minilm.load_tokenizer()
