"""OpenAI's BPE encodings for tiktoken, offline: the rank files ship in tokenizer_data/ (see its
README) and are checked against tiktoken's hashes when loaded. The router counts usage with them
and memory budgets a session's history; load them once per process (about a second).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from pathlib import Path
from typing import Any

import tiktoken

DATA_DIR = Path(__file__).parent / "tokenizer_data"
FALLBACK = "o200k_base"

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"
# pat_str and special tokens exactly as tiktoken_ext/openai_public.py defines them.
ENCODINGS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501 - tiktoken's pattern, verbatim
        "special_tokens": {_ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                           "<|fim_suffix|>": 100260, _ENDOFPROMPT: 100276},
    },
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        "special_tokens": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    },
}

# As tiktoken/model.py maps them, limited to the two encodings we ship.
_EXACT = {
    "gpt-4": "cl100k_base", "gpt-3.5-turbo": "cl100k_base", "gpt-3.5": "cl100k_base",
    "gpt-35-turbo": "cl100k_base", "davinci-002": "cl100k_base", "babbage-002": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base", "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
}
_PREFIXES = (  # longest first: "gpt-4o" must win over "gpt-4"
    ("ft:gpt-3.5-turbo", "cl100k_base"), ("gpt-3.5-turbo-", "cl100k_base"),
    ("gpt-35-turbo-", "cl100k_base"), ("chatgpt-4o", "o200k_base"), ("ft:gpt-4o", "o200k_base"),
    ("gpt-4.5", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4o", "o200k_base"),
    ("ft:gpt-4", "cl100k_base"), ("gpt-4-", "cl100k_base"), ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"), ("o3", "o200k_base"), ("o4", "o200k_base"),
)


def load_encoding(name: str, data_dir: Path = DATA_DIR) -> tiktoken.Encoding:
    spec = ENCODINGS[name]
    blob = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
    if hashlib.sha256(blob).hexdigest() != spec["sha256"]:
        raise RuntimeError(f"{data_dir / name}.tiktoken.gz does not hold the expected {name} ranks")
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in blob.splitlines() if line)}
    return tiktoken.Encoding(name, pat_str=spec["pat_str"], mergeable_ranks=ranks,
                             special_tokens=spec["special_tokens"])


def encoding_name_for(model: str) -> str:
    """The encoding for a model name; a vendor prefix such as "openai/" is ignored."""
    name = model.rpartition("/")[2]
    if name in _EXACT:
        return _EXACT[name]
    for prefix, encoding in _PREFIXES:
        if name.startswith(prefix):
            return encoding
    return FALLBACK
