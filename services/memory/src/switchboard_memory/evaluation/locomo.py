"""LoCoMo-10 (Maharana et al., ACL 2024) from a local copy: its conversations as turns, and its
evidence questions (categories 1-4, 1,536 of them). The data states no licence: it is read from a
path given on the command line, never shipped or committed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Line:
    dia_id: str
    speaker: str
    text: str


@dataclass(frozen=True)
class Dialogue:
    speaker_a: str
    lines: list[Line]
    questions: list[tuple[str, set[str]]]  # (question, evidence dia_ids)


def files(path: Path) -> list[Path]:
    """The conversation files under `path`: the folder locomo10_v2/*.json from the repository's
    data/locomo10.zip, or the single locomo10.json."""
    if path.is_file():
        return [path]
    found = sorted(path.rglob("*.json"))
    if not found:
        raise SystemExit(f"no LoCoMo JSON files under {path}")
    return found


def load(path: Path) -> list[Dialogue]:
    out = []
    for file in files(path):
        data = json.loads(file.read_text())
        for sample in data if isinstance(data, list) else [data]:
            out.append(_dialogue(sample))
    return out


def _dialogue(sample: dict) -> Dialogue:
    conv = sample.get("conversation", sample)
    sessions = sorted((k for k in conv if re.fullmatch(r"session_\d+", k)),
                      key=lambda k: int(k.split("_")[1]))
    lines = []
    for key in sessions:
        for turn in conv[key]:
            text = turn.get("text", "")
            if turn.get("blip_caption"):  # a shared photo, as a multimodal chat would carry it
                text += f" [shares a photo: {turn['blip_caption']}]"
            lines.append(Line(turn["dia_id"], turn["speaker"], text))
    questions = [(q["question"], {e.strip() for e in q["evidence"]}) for q in sample["qa"]
                 if q.get("category") in (1, 2, 3, 4) and q.get("evidence")]
    speaker_a = conv.get("speaker_a") or (lines[0].speaker if lines else "")
    return Dialogue(speaker_a, lines, questions)
