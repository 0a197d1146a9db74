"""The prompt-injection and jailbreak classifier: TF-IDF (word 1-2-grams and character 2-5-grams
across word boundaries; in-word character n-grams are supported too) and logistic regression,
trained in this repository by `make guardrails-train` and stored as plain numbers (no pickle),
scored here without scikit-learn.

The scoring is scikit-learn's TfidfVectorizer (lower-cased, sublinear tf, smoothed idf, l2 per
vectorizer) followed by the linear model; offline/train.py checks that both give the same score.
A long text is scored sentence by sentence (in pieces of about 200 characters) and takes its
highest score, so one injected sentence in a long tool result is not diluted by the rest.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "injection.json.gz"
# Trained without chit-chat: scores third-party content (tool results, RAG chunks), whose
# injections read like conversation (offline/train.py --recipe indirect).
INDIRECT_MODEL_PATH = MODEL_PATH.with_name("injection-indirect.json.gz")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_SPACES = re.compile(r"\s\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?\n])(?=\s)")


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    tokens = _TOKEN.findall(text.lower())
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return grams


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    grams = []
    for word in _SPACES.sub(" ", text.lower()).split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            offset = 0
            grams.append(padded[offset:offset + n])
            while offset + n < length:
                offset += 1
                grams.append(padded[offset:offset + n])
            if offset == 0:  # a word shorter than n counts once (as scikit-learn does)
                break
    return grams


def char_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams across word boundaries, so "ignore previous" yields "e p" (how an
    instruction reads, not only its words)."""
    text = _SPACES.sub(" ", text.lower())
    grams = list(text) if low == 1 else []
    for n in range(max(low, 2), min(high, len(text)) + 1):
        grams.extend(text[i:i + n] for i in range(len(text) - n + 1))
    return grams


_ANALYZERS = {"word": word_ngrams, "char_wb": char_wb_ngrams, "char": char_ngrams}


@dataclass(frozen=True)
class Space:
    """One TF-IDF vector space and the model's weights on it: term -> (idf, coefficient)."""

    analyzer: str
    low: int
    high: int
    weights: dict[str, tuple[float, float]]

    def logit(self, text: str) -> float:
        counts = Counter(_ANALYZERS[self.analyzer](text, self.low, self.high))
        dot = norm = 0.0
        # Only the text's terms the model knows (a set intersection, in C): most n-grams are not.
        for term in counts.keys() & self.weights.keys():
            idf, coef = self.weights[term]
            value = (1.0 + math.log(counts[term])) * idf
            norm += value * value
            dot += value * coef
        return dot / math.sqrt(norm) if norm else 0.0


class Classifier:
    """Scores a text 0..1 (1: an attack). Loaded once per process; holds no per-request state."""

    def __init__(self, spaces: list[Space], intercept: float, threshold: float,
                 window_chars: int, about: dict[str, Any]) -> None:
        self._spaces = spaces
        self._intercept = intercept
        self.threshold = threshold  # the default: at most 0.5 % false positives on each benign validation share
        self._window = window_chars
        self.about = about

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> Classifier:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
        spaces = [Space(s["analyzer"], s["ngram_range"][0], s["ngram_range"][1],
                        dict(zip(s["terms"], zip(s["idf"], s["coef"], strict=True), strict=True)))
                  for s in data["spaces"]]
        return cls(spaces, data["intercept"], data["threshold"], data["window_chars"],
                   data.get("about", {}))

    def score(self, text: str) -> float:
        return max((self._score_one(piece) for piece in windows(text, self._window)), default=0.0)

    def _score_one(self, text: str) -> float:
        z = self._intercept + sum(space.logit(text) for space in self._spaces)
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


def windows(text: str, size: int) -> list[str]:
    """The text itself when short; else its sentences packed, in order, into pieces of at most
    `size` characters (a longer sentence cut at whitespace), so an injected sentence is scored
    with little of the text around it."""
    if len(text) <= size:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > size:
            cut = sentence.rfind(" ", size // 2, size)
            cut = cut if cut > 0 else size
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        if current and len(current) + len(sentence) > size:
            pieces.append(current)
            current = ""
        current += sentence
    if current.strip():
        pieces.append(current)
    return pieces
