"""Text to BM25 terms: Unicode words, lowercased, English stop words dropped, Snowball-stemmed.

Stemming lets "adopted" match "adoption"; the stop words are the usual short English list (a
question's "what did you" would otherwise outweigh its one telling word).
"""

from __future__ import annotations

import re
import threading

import Stemmer

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP_LIST = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves s t d ll m re ve
"""
STOP_WORDS = frozenset(_STOP_LIST.split())

# PyStemmer's objects are not thread-safe; one per thread (analysis runs in worker threads too).
_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def terms(text: str) -> list[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
    return _stemmer().stemWords(words)
