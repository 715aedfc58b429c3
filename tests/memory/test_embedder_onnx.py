"""The ONNX Runtime embedder (memory/onnx_embedder.py) and its exporter (memory/export_onnx.py).

Slow-marked: the model is exported once per module (a child process that imports torch) into a temp folder;
the vectors are checked against sentence-transformers within 1e-5, and a daemon-like process building the
memory part with ``memory.embedder = "onnx"`` is checked never to import torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from memory.embedder import SentenceTransformerEmbedder
from memory.onnx_embedder import (
    META_FILE,
    MODEL_FILE,
    OnnxEmbedder,
    export_in_child,
    is_exported,
    onnx_model_dir,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "hi",
    "What did I tell you about the plumber coming on Thursday morning?",
    "   spaces around   ",
    "",
    "Remember: the spare key is under the blue flower pot by the back door. " * 4,
    " ".join(f"sentence number {i} talks about gardens and rain." for i in range(120)),  # > 256 tokens
    "Ünïcödé, emoji 🙂, CJK 東京.",
] + [f"memory {i}: bought {i} apples at the market on day {i}." for i in range(40)]  # a bulk-sized call


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("data")
    out = onnx_model_dir(data_dir)
    export_in_child(out)
    return out


@pytest.fixture(scope="module")
def st() -> SentenceTransformerEmbedder:
    e = SentenceTransformerEmbedder()
    e.load()
    return e


def test_export_is_complete_and_verified(exported: Path) -> None:
    assert is_exported(exported)
    meta = json.loads((exported / META_FILE).read_text())
    assert meta["max_seq_length"] == 256 and meta["dim"] == 384
    assert (exported / MODEL_FILE).stat().st_size > 80_000_000
    # no temporary sibling left behind by the atomic rename
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]


def test_vectors_equal_sentence_transformers(exported: Path, st: SentenceTransformerEmbedder) -> None:
    onnx = OnnxEmbedder(exported, export=False, threads=1, bulk_threads=2)
    got = np.asarray(onnx.embed(TEXTS))
    want = np.asarray(st.embed(TEXTS))
    assert got.shape == want.shape == (len(TEXTS), 384)
    assert float(np.max(np.abs(got - want))) < 1e-5
    # one at a time (the chat path, one thread) gives the same vectors as the bulk path
    single = np.asarray([onnx.embed([t])[0] for t in TEXTS[:7]])
    assert float(np.max(np.abs(single - got[:7]))) < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_token_counts_and_chunks_match_sentence_transformers(exported: Path, st: SentenceTransformerEmbedder) -> None:
    onnx = OnnxEmbedder(exported, export=False)
    for text in TEXTS[:7]:
        assert onnx.token_count(text) == st.token_count(text)
    long = " ".join(f"Paragraph {i} is about the allotment and its tomatoes, beans and leeks." for i in range(80))
    assert onnx.chunk(long) == st.chunk(long)
    assert all(onnx.token_count(c) <= onnx.max_tokens - 2 for c in onnx.chunk(long))
    assert onnx.chunk("short") == ["short"]


def test_threads_share_one_embedder(exported: Path) -> None:
    onnx = OnnxEmbedder(exported, export=False)
    long = " ".join(["word"] * 2000)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                assert len(onnx.embed([f"text {i}", long])) == 2
                assert onnx.token_count(long) == 2000
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_long_batch_does_not_keep_its_memory(exported: Path) -> None:
    """ONNX Runtime's CPU arena grows to the largest batch it served and keeps it for the life of the
    session (about 100 MiB after one batch of 64 long texts): the daemon's soak saw it as memory that never
    came back. The embedder asks for the arena to be shrunk after each run."""
    from assistant.core.procmem import memory_info, trim_heap

    e = OnnxEmbedder(exported, export=False, batch_size=64, threads=1, bulk_threads=1)
    e.embed(["warm up", "the sessions and the tokenizers"])
    trim_heap()
    before = memory_info()["pss"]
    long_texts = [" ".join(f"word{i} about gardens and rain on day {j}" for j in range(40)) for i in range(64)]
    assert len(e.embed(long_texts)) == 64
    trim_heap()
    grown = (memory_info()["pss"] - before) / 2**20
    assert grown < 40, f"the embedder kept {grown:.0f} MiB after one long batch"


def test_missing_model_without_export_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        OnnxEmbedder(tmp_path / "none", export=False).embed(["x"])


DAEMON_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from assistant.config import load_settings
    from assistant.core.clock import SystemClock
    from memory.opening import build_memory
    settings = load_settings(None, data_dir=Path(sys.argv[1]))
    memory = build_memory(settings, SystemClock())
    memory.warm_up()
    memory.add("The spare key is under the blue flower pot.")
    hits = memory.search("where is the key", k=1)
    print(json.dumps({"torch": "torch" in sys.modules,
                      "sentence_transformers": "sentence_transformers" in sys.modules,
                      "transformers": "transformers" in sys.modules,
                      "embedder": type(memory.embedder).__name__, "hit": hits[0].record.text}))
    """
)


def run_daemon_child(data_dir: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env |= {"HOME": str(data_dir.parent / "home"), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", DAEMON_CHILD, str(data_dir)], capture_output=True, text=True,
                         env=env, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def test_daemon_memory_never_imports_torch(tmp_path: Path) -> None:
    """First start (no ONNX model yet: exported by a child process) and a second start (reused): the
    process that builds the memory part, embeds and searches never imports torch or transformers."""
    data_dir = tmp_path / "data"
    for _ in range(2):
        out = run_daemon_child(data_dir)
        assert out == {"torch": False, "sentence_transformers": False, "transformers": False,
                       "embedder": "OnnxEmbedder", "hit": "The spare key is under the blue flower pot."}
        assert is_exported(onnx_model_dir(data_dir))
