"""Send the corpus and generated requests through a running stack and collect the figures."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from tests.fuzz.corpus import CASES
from tests.fuzz.generate import Probe, probes
from tests.fuzz.outcomes import Figures, send


def generate(count: int, seed: int, master_key: str) -> list[Probe]:
    """`count` requests drawn by hypothesis (generation only: nothing to shrink, no database)."""
    out: list[Probe] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(probes(master_key))
    def collect(probe: Probe) -> None:
        out.append(probe)

    collect()
    return out


def run_generated(stack, count: int, *, seed: int, workers: int = 8,
                  figures: Figures | None = None) -> Figures:
    figures = figures or Figures()
    todo = generate(count, seed, stack.master_key)
    lock = threading.Lock()
    local = threading.local()

    def one(probe: Probe) -> None:
        client = getattr(local, "client", None) or _client(local)
        outcome = send(client, probe.method, stack.edge_url + probe.path, probe.headers, probe.body)
        with lock:
            figures.add(probe.name, outcome, pending=probe.pending, large=probe.large)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, todo))
    return figures


def run_corpus(stack, figures: Figures | None = None) -> Figures:
    figures = figures or Figures()
    with httpx.Client() as client:
        for case in CASES:
            outcome = case.run(client, stack.edge_url, stack.master_key)
            expected = [p for p in case.check(outcome) if p not in outcome.problems()]
            figures.add(case.name, outcome, pending=case.pending, large=case.large,
                        expected=expected)
    return figures


def _client(local: threading.local) -> httpx.Client:
    local.client = httpx.Client()
    return local.client
