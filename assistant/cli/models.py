"""`assistant models [--json]`: the bundled models (size, RAM needed, licence, source packages, installed or
not), which one ``model.bundled = "auto"`` picks on this machine and why, and which model the daemon runs.

Nothing is assembled or hashed here: a part-packaged model shows its file once the daemon (or `assistant
doctor`) has put it in place.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class ModelRow:
    name: str
    description: str
    upstream: str
    licence: str
    params: str
    quant: str
    bytes: int  # the GGUF's size (pinned)
    ram_needed: int  # resident at the default n_ctx, the model alone
    min_total_ram: int  # "auto" picks it from this much RAM (0: any; chat models only)
    chat: bool
    packages: list[str]
    install: str
    installed: bool
    path: str | None  # the GGUF, once it is in place
    auto: bool  # what model.bundled = "auto" picks here
    in_use: bool  # what the daemon runs with this config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the bundled models, which one runs here and why")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def bundled_rows(data_dir: Path, model_path: Path | None, bundled: str, total_ram: int) -> tuple[list[ModelRow], dict[str, Any]]:
    """One row per bundled model, and the "auto" choice for ``total_ram`` ({"name", "reason"} or an error)."""
    from assistant.core.errors import ModelFileError
    from assistant.llm.bundled import AUTO, BUNDLED, choose_auto

    try:
        choice = choose_auto(total_ram)
        auto: dict[str, Any] = {"name": choice.name, "reason": choice.reason, "total_ram": total_ram}
    except ModelFileError as exc:
        auto = {"name": None, "reason": exc.message, "total_ram": total_ram}
    running = auto["name"] if bundled == AUTO else bundled
    rows = []
    for m in BUNDLED.values():
        installed = m.installed()
        target = m.target(data_dir) if installed else None
        rows.append(ModelRow(
            m.name, m.description, m.upstream, m.licence, m.params, m.quant, m.size, m.ram_needed,
            m.min_total_ram if m.instruct else 0, m.instruct, list(m.packages), m.install, installed,
            str(target) if target is not None and target.is_file() else None,
            m.name == auto["name"], model_path is None and m.name == running,
        ))  # fmt: skip
    return rows, auto


def run(args: argparse.Namespace) -> int:
    from assistant.config import load_settings
    from assistant.llm.model_file import machine_ram

    settings = load_settings(args.config)
    own = Path(settings.model.path).expanduser() if settings.model.path is not None else None
    rows, auto = bundled_rows(settings.data_dir, own, settings.model.bundled, machine_ram())
    if args.json:
        chosen = {"path": str(own), "bytes": own.stat().st_size if own.is_file() else None} if own else None
        print(json.dumps({"bundled": [asdict(r) for r in rows], "auto": auto, "setting": settings.model.bundled,
                          "model_path": chosen}, indent=2))  # fmt: skip
        return 0
    print(f"  {'name':<9} {'params':>6}  {'file':>9}  {'RAM needed':>10}  {'auto from':>9}  {'licence':<19} installed")
    for r in rows:
        mark = "*" if r.in_use else " "
        floor = ("any" if not r.min_total_ram else f"{r.min_total_ram / 2**30:.2f} GiB") if r.chat else "never"
        state = ("yes, in place" if r.path else "yes") if r.installed else "no"
        print(f"{mark} {r.name:<9} {r.params:>6}  {_mb(r.bytes):>9}  {_mb(r.ram_needed):>10}  {floor:>9}  "
              f"{r.licence:<19} {state}")  # fmt: skip
    print()
    for r in rows:
        first, last = r.packages[0], r.packages[-1]
        source = first if len(r.packages) == 1 else f"{first} ... {last} ({len(r.packages)} wheels)"
        print(f"  {r.name}: {r.description}\n    upstream {r.upstream}; packages {source}")
        if not r.installed:
            print(f"    install: {r.install}")
    print()
    ram = auto["total_ram"] / 2**30
    if auto["name"]:
        print(f'auto on this machine ({ram:.1f} GiB of RAM): {auto["name"]} ({auto["reason"]})')
    else:
        print(f"auto on this machine: no model ({auto['reason']})")
    if own is not None:
        size = _mb(own.stat().st_size) if own.is_file() else "missing"
        print(f"* model.path {own} ({size}) runs: model.bundled is not used")
    else:
        print(f'* model.bundled = "{settings.model.bundled}" runs (set it to a name above, or model.path to a .gguf '
              "file; see docs/models.md)")
    return 0
