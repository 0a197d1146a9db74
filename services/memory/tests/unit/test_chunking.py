"""Chunking by tokens: within the limit, overlapping, cut at seams, headings carried along."""

from __future__ import annotations

import itertools

import pytest

from switchboard_memory.chunking import chunk
from switchboard_memory.tokens import TokenCounter


@pytest.fixture(scope="module")
def enc():
    return TokenCounter.load().encoding()


def test_a_short_text_is_one_chunk(enc):
    (piece,) = chunk("Refunds take five days.", enc, 64, 8)
    assert piece.text == "Refunds take five days."
    assert piece.tokens == len(enc.encode_ordinary(piece.text))


def test_long_text_is_cut_within_the_limit_at_sentence_ends_with_overlap(enc):
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(60)]
    pieces = chunk(" ".join(sentences), enc, 64, 16)
    assert len(pieces) > 5
    assert all(p.tokens <= 64 for p in pieces)
    assert all(p.text.endswith(".") for p in pieces)  # cut at a seam, not mid-sentence
    for before, after in itertools.pairwise(pieces):
        assert after.text.split(".")[0] + "." in before.text  # the next one starts inside it
    text = " ".join(p.text for p in pieces)
    assert all(s in text for s in sentences)  # nothing lost


def test_markdown_sections_carry_their_heading_trail(enc):
    doc = "# Guide\n\nIntro.\n\n## Install\n\nRun make run.\n\n```\n# not a heading\n```\n"
    pieces = chunk(doc, enc, 256, 16)
    assert [p.text.split("\n\n")[0] for p in pieces] == ["Guide", "Guide > Install"]
    assert "# not a heading" in pieces[1].text


def test_a_text_without_seams_is_cut_at_the_limit(enc):
    pieces = chunk("x" * 5000, enc, 50, 10)
    assert all(p.tokens <= 50 for p in pieces)
    assert "".join(p.text for p in pieces).count("x") >= 5000
