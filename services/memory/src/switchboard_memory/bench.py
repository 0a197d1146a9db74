"""`python -m switchboard_memory.bench [chunks]`: memory's own costs, as the router will pay them:
BuildContext over real gRPC on loopback against a real server on a scratch SQLite file (what
`make bench` can call through `measure()`).

- BuildContext of a 50-turn session (window, recall and all), p50 / p99;
- BuildContext with a collection of 10,000 chunks and rag_top_k 5 (query embedding, BM25, cosine,
  fusion), p50 / p99 with the index warm, and the first query's cold index load;
- ingestion throughput in chunks per second (chunking, embedding, storing).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from switchboard.memory.v1 import memory_pb2, memory_pb2_grpc

from switchboard_common import logs

from switchboard_memory import bootstrap, server
from switchboard_memory.domain import Caller, DocumentInput
from switchboard_memory.evaluation import generated
from switchboard_memory.settings import MemorySettings

TENANT = "bench"
_WORD_LIST = ("policy account refund travel office budget request mentor archive review approval "
              "schedule contract invoice device network badge parking kitchen training")
WORDS = _WORD_LIST.split()


def _messages(*items: Any) -> struct_pb2.ListValue:
    out = struct_pb2.ListValue()
    out.extend(list(items))
    return out


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1e3, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1e3, 2)}


async def _session(stub, turns: int) -> None:
    conversation = generated.conversations(count=1, turns=turns, facts=5, seed=7)[0]
    for i, (user, assistant) in enumerate(conversation.turns):
        answer = struct_pb2.Struct()
        answer.update({"role": "assistant", "content": assistant})
        await stub.AppendTurn(memory_pb2.AppendTurnRequest(
            tenant_id=TENANT, key_id="k", session_id="s50", turn_id=f"t{i}",
            messages=_messages({"role": "user", "content": user}), answer=answer))


async def _build_context(stub, rounds: int) -> dict[str, float]:
    request = memory_pb2.BuildContextRequest(
        tenant_id=TENANT, key_id="k", session_id="s50", model="gpt-4o",
        context_window_tokens=2048, messages=_messages(
            {"role": "user", "content": "What did I call my new pet?"}))
    for _ in range(10):
        await stub.BuildContext(request)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await stub.BuildContext(request)
        samples.append(time.perf_counter() - start)
    return _percentiles(samples)


def _documents(chunks: int, rng: random.Random) -> list[DocumentInput]:
    # One chunk each: about 60 tokens of policy-like text.
    return [DocumentInput(f"d{i}", " ".join(rng.choice(WORDS) for _ in range(50)) + f" item {i}.",
                          {"group": str(i % 10)}) for i in range(chunks)]


async def measure(chunks: int = 10_000, rounds: int = 200) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as directory:
        settings = MemorySettings(data_dir=Path(directory), ingest_wait_seconds=3600,
                                  session_ttl_seconds=0)
        app = await bootstrap.build(settings, sweep=False)
        grpc_server, _ = server.create(app)
        port = grpc_server.add_insecure_port("127.0.0.1:0")
        await grpc_server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = memory_pb2_grpc.MemoryServiceStub(channel)
                await _session(stub, 50)
                context = await _build_context(stub, rounds)
                collections = app.servicer._collections
                await collections.create(Caller("k", TENANT), "bench", "", None, None)
                docs = _documents(chunks, random.Random(19))
                start = time.perf_counter()
                job = await collections.add_documents(TENANT, "bench", docs)
                ingest_s = time.perf_counter() - start
                rag = await _rag_context(stub, rounds)
        finally:
            await grpc_server.stop(None)
            await app.close()
    return {"build_context_50_turns": context,
            f"rag_{chunks}_chunks_top5": rag,
            "ingestion": {"chunks": job.chunks_added, "seconds": round(ingest_s, 1),
                          "chunks_per_s": round(job.chunks_added / ingest_s, 1)}}


async def _rag_context(stub, rounds: int) -> dict[str, float]:
    def request(i: int) -> memory_pb2.BuildContextRequest:
        return memory_pb2.BuildContextRequest(
            tenant_id=TENANT, key_id="k", rag_collection="bench", rag_top_k=5, model="gpt-4o",
            messages=_messages({"role": "user", "content": f"refund policy {WORDS[i % 20]}"}))

    start = time.perf_counter()
    await stub.BuildContext(request(0))
    cold = time.perf_counter() - start
    samples = []
    for i in range(rounds):
        begin = time.perf_counter()
        reply = await stub.BuildContext(request(i))
        samples.append(time.perf_counter() - begin)
        assert reply.rag_chunks == 5
    return {**_percentiles(samples), "cold_load_ms": round(cold * 1e3, 1)}


def main() -> None:
    logs.configure("memory-bench", level="WARNING", fmt="console")
    chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(asyncio.run(measure(chunks)), indent=2))


if __name__ == "__main__":
    main()
