"""The MiniLM embedder on ONNX Runtime and the ``tokenizers`` library: no PyTorch in the process.

The model is the bundled all-MiniLM-L6-v2 exported once to ONNX (``memory/export_onnx.py``, run in a child
process: the export imports torch, this module never does) into ``<data_dir>/models/minilm-onnx/``:
``model.onnx`` (the transformer, ``last_hidden_state`` out), ``tokenizer.json`` and ``meta.json``
(``max_seq_length``, ``dim``, the source weights' sha256). What sentence-transformers does for this model is
done here the same way: strip each text, tokenize with truncation to ``max_seq_length`` (256) and padding
to the longest text of the batch, mean-pool the token vectors with the attention mask, L2-normalise.
Vectors equal the sentence-transformers ones within 1e-5 (tests/memory/test_embedder_onnx.py).

Threads: ``threads`` (default 1) is for chat-time calls, a query or a few chunks, so an embedding never
starves the language model of cores; a call embedding ``BULK_MIN`` texts or more (an import, an eval, a
recovery) runs on a second session with ``bulk_threads`` intra-op threads (0 = every core), created on first
bulk use. Every use of the tokenizers or the sessions holds ``_use_lock`` per slice of ``LOCK_SLICE`` texts,
as in memory/embedder.py, so a chat query waits for one slice of an import, not for the whole import.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memory.embedder import LOCK_SLICE, split_by_tokens

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"
BULK_MIN = 16  # texts in one call from which the bulk session is used
EXPORT_TIMEOUT = 600.0


def installed_model_dir() -> Path:
    """Where `make install` exports the model once for this environment (``<venv>/share/assistant``)."""
    return Path(sys.prefix) / "share" / "assistant" / "minilm-onnx"


def onnx_model_dir(data_dir: Path) -> Path:
    """The exported model: the environment's copy made at install when there is one, else the data dir's
    (exported there at first start)."""
    installed = installed_model_dir()
    return installed if is_exported(installed) else data_dir / "models" / "minilm-onnx"


def is_exported(model_dir: Path) -> bool:
    return all((model_dir / name).is_file() for name in (MODEL_FILE, TOKENIZER_FILE, META_FILE))


def export_in_child(model_dir: Path, source: Path | None = None, timeout: float = EXPORT_TIMEOUT) -> None:
    """Run ``python -m memory.export_onnx`` in a child process (it imports torch; this process must not)."""
    cmd = [sys.executable, "-m", "memory.export_onnx", "--out", str(model_dir)]
    if source is not None:
        cmd += ["--source", str(source)]
    log.info("exporting the embedding model to ONNX (once): %s", model_dir)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not is_exported(model_dir):
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(
            f"exporting the embedding model to ONNX failed (exit {done.returncode}): " + " | ".join(tail)
        )


def mean_pool_normalize(hidden: Any, mask: Any) -> Any:
    """sentence-transformers' Pooling(mean) then Normalize, in float32, on numpy arrays."""
    import numpy as np

    m = mask.astype(np.float32)[:, :, None]
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)


class OnnxEmbedder:
    """Loads lazily (first embed), exporting the model first if ``model_dir`` lacks it. Thread-safe."""

    dim = 384

    def __init__(
        self,
        model_dir: Path,
        *,
        source: Path | None = None,
        batch_size: int = 16,
        threads: int = 1,
        bulk_threads: int = 0,
        export: bool = True,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.source = source
        self.batch_size = batch_size
        self.threads = threads
        self.bulk_threads = bulk_threads or max(1, os.cpu_count() or 1)
        self.export = export
        self._session: Any = None
        self._bulk_session: Any = None
        self._tokenizer: Any = None  # truncates and pads, for the model
        self._counter: Any = None  # neither, for counting and chunking
        self._max_tokens = 256
        self._options: Any = None  # onnxruntime.RunOptions, made with the first session
        self._lock = threading.Lock()  # loading
        self._use_lock = threading.Lock()  # every use of the tokenizers or the sessions

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _new_session(self, threads: int) -> Any:
        ort: Any = importlib.import_module("onnxruntime")  # untyped (no stubs): used as Any

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return ort.InferenceSession(
            str(self.model_dir / MODEL_FILE), opts, providers=["CPUExecutionProvider"]
        )

    def _run_options(self) -> Any:
        """Shrink the CPU arena after each run: ONNX Runtime otherwise keeps the memory of the largest batch
        it ever served (about 100 MiB after 64 long texts) for the life of the session. Measured: same speed
        (the arena still serves the run's own allocations); without any arena, long batches were 2x slower."""
        if self._options is None:
            ort: Any = importlib.import_module("onnxruntime")
            options = ort.RunOptions()
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
            self._options = options
        return self._options

    def load(self) -> Any:
        with self._lock:
            if self._session is None:
                from tokenizers import Tokenizer

                if not is_exported(self.model_dir):
                    if not self.export:
                        raise FileNotFoundError(f"no ONNX embedding model in {self.model_dir}")
                    export_in_child(self.model_dir, self.source)
                meta = json.loads((self.model_dir / META_FILE).read_text(encoding="utf-8"))
                self._max_tokens = int(meta["max_seq_length"])
                self.dim = int(meta.get("dim", 384))
                tok = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
                tok.enable_truncation(max_length=self._max_tokens)
                tok.enable_padding(
                    pad_id=int(meta.get("pad_id", 0)), pad_token=str(meta.get("pad_token", "[PAD]"))
                )
                counter = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
                counter.no_truncation()
                counter.no_padding()
                self._tokenizer, self._counter = tok, counter
                self._session = self._new_session(self.threads)
            return self._session

    @property
    def max_tokens(self) -> int:
        self.load()
        return self._max_tokens

    def _bulk(self) -> Any:
        if self.bulk_threads <= self.threads:
            return self._session
        if self._bulk_session is None:
            self._bulk_session = self._new_session(self.bulk_threads)
        return self._bulk_session

    def _run(self, session: Any, texts: list[str]) -> Any:
        import numpy as np

        encodings = self._tokenizer.encode_batch([t.strip() for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (hidden,) = session.run(None, feeds, self._run_options())
        return mean_pool_normalize(hidden, mask)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        self.load()
        texts = list(texts)
        # Longest first, as sentence-transformers batches, so a batch pads to similar lengths.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), LOCK_SLICE):
            part = order[start : start + LOCK_SLICE]
            with self._use_lock:
                session = self._bulk() if len(texts) >= BULK_MIN else self._session
                for b in range(0, len(part), self.batch_size):
                    idx = part[b : b + self.batch_size]
                    vectors = self._run(session, [texts[i] for i in idx])
                    for i, v in zip(idx, vectors.tolist(), strict=True):
                        out[i] = v
        return out

    def _count(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def token_count(self, text: str) -> int:
        self.load()
        with self._use_lock:
            return self._count(text)

    def chunk(self, text: str, max_tokens: int | None = None, overlap: int = 32) -> list[str]:
        """Split ``text`` into windows the model sees whole (its window is 256 wordpieces).

        Windows end at sentence boundaries where possible and overlap by about ``overlap`` tokens.
        """
        self.load()
        limit = (max_tokens or self._max_tokens) - 2  # [CLS] and [SEP]
        with self._use_lock:
            return split_by_tokens(text, self._count, limit, overlap)


def onnx_embedder(data_dir: Path, *, threads: int, bulk_threads: int) -> OnnxEmbedder:
    """The ``onnx`` embedder plugin (the default): MiniLM on ONNX Runtime, exported under ``data_dir`` at first
    use unless the environment has its copy."""
    return OnnxEmbedder(onnx_model_dir(data_dir), threads=threads, bulk_threads=bulk_threads)
