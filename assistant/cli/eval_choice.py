"""`assistant eval choice [--model A --model B]`: the model's choice of a skill (assistant.skillkit.skill_choice),
measured on requests written as people talk (assistant/evals/choice.jsonl), against the rules-only baseline.

Each item has a ``text``, the option it should reach (``expected``: a skill of the registry, ``search_memory``,
``set_reminder``, ``save_note`` or ``none``) and a ``split`` ("dev": the prompt and its examples are tuned on it;
"confirm": held out, every third item of each label). The baseline is the cascade without the model: the
reminders parser (``parse_request``), the rules layer's "remember that" and the skills' shortcuts (phrases
and slash commands, matched without running the skill). The cascade asks the model only when the baseline
has no route, as the chat does. Only the choice runs: no skill, no network, no memory (the reminder and
note options are declared, never run).

Reported per model and split: the share routed right and the share wrongly routed to a skill (a skill that
is not the expected one, or any skill for a "none" item), for the baseline and the cascade; and the
latency the choice adds to the messages the baseline leaves to the model (median and p95, a message the
small-talk filter skips counting 0 s), after one warm-up choice that evaluates the fixed prompt (its time
is reported as ``first``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.llm.bundled import BUNDLED

SPLITS = ("dev", "confirm")
EVAL_ZONE = "Europe/Berlin"
EVAL_NOW = datetime(2026, 3, 18, 8, 30, tzinfo=UTC)
NONE = "none"
MEMORY = "search_memory"


def same_route(route: str, expected: str) -> bool:
    """Whether ``route`` does what ``expected`` asks: ``search_memory`` runs nothing (plain chat answers with
    recall), so it and ``none`` are the same answer; a question about the user's own life goes to plain chat
    without asking the model at all."""
    return route == expected or {route, expected} == {NONE, MEMORY}


@dataclass(frozen=True)
class ChoiceItem:
    id: str
    split: str
    text: str
    expected: str


def load_items(path: Path | None = None) -> list[ChoiceItem]:
    """The items of ``path``, or of the set shipped in assistant/evals."""
    from assistant.cli.eval_everyday import split_rows

    return [ChoiceItem(r["id"], r["split"], r["text"], r["expected"]) for r in split_rows("choice.jsonl", path)]


Route = Callable[[str], str | None]


def baseline_router(settings: Settings) -> Route:
    """The route of the cascade without the model: reminders, "remember that", a skill's shortcut (its name)
    or None. Nothing runs."""
    from assistant.chat.rules import _REMEMBER
    from assistant.core.clock import SystemClock
    from assistant.core.localtime import get_zone
    from assistant.reminders.parse import parse_request
    from assistant.skillkit.registry import SkillParts, SkillRegistry, SkillRunner
    from assistant.skillkit.shortcuts import SkillShortcuts

    zone = get_zone(EVAL_ZONE)
    shortcuts = SkillShortcuts(
        SkillRunner(SkillRegistry.discover(), SkillParts(settings, SystemClock(), None))
    )

    def route(text: str) -> str | None:
        if parse_request(text.strip(), EVAL_NOW, zone) is not None:
            return "set_reminder"
        if _REMEMBER.match(text.strip()):
            return "save_note"
        matched = shortcuts.match(text)
        return matched[0] if matched is not None and matched[0] in shortcuts.runner.registry else None

    return route


@dataclass
class Row:
    id: str
    split: str
    text: str
    expected: str
    baseline: str  # the baseline's route, "none" when it has none
    cascade: str  # the baseline's route, else the model's choice
    asked: bool  # the model was asked (baseline had no route and the message passed the small-talk filter)
    seconds: float  # what the choice added (0 when the baseline answered or the filter skipped the model)
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelReport:
    label: str
    path: str
    load_seconds: float = 0.0
    first_seconds: float = 0.0  # the warm-up choice: the fixed prompt evaluated once
    rows: list[Row] = field(default_factory=list)

    def stats(self, split: str | None = None) -> dict[str, Any]:
        rows = [r for r in self.rows if split in (None, r.split)]
        n = len(rows)

        def share(pred: Callable[[Row], bool]) -> float | None:
            return round(sum(map(pred, rows)) / n, 3) if n else None

        left = [r.seconds for r in rows if r.baseline == NONE]  # the messages the choice may add to
        return {
            "items": n,
            "baseline_right": share(lambda r: same_route(r.baseline, r.expected)),
            "baseline_wrong_skill": share(lambda r: not same_route(r.baseline, r.expected) and r.baseline != NONE),
            "cascade_right": share(lambda r: same_route(r.cascade, r.expected)),
            "cascade_wrong_skill": share(lambda r: not same_route(r.cascade, r.expected) and r.cascade != NONE),
            "asked": sum(r.asked for r in rows),
            "left_to_model": len(left),
            "added_median_s": round(statistics.median(left), 2) if left else None,
            "added_p95_s": round(_p95(left), 2) if left else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.label,
            "path": self.path,
            "load_seconds": round(self.load_seconds, 1),
            "first_choice_seconds": round(self.first_seconds, 2),
            "all": self.stats(),
            **{s: self.stats(s) for s in SPLITS},
            "rows": [asdict(r) for r in self.rows],
        }


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run_items(
    choose: Callable[[str], Any],
    route: Route,
    items: Sequence[ChoiceItem],
    progress: Callable[[str], None] | None,
) -> list[Row]:
    """Each item through the baseline, then (when it has no route) the model's choice."""
    rows = []
    for item in items:
        base = route(item.text) or NONE
        asked, seconds, args, cascade = False, 0.0, {}, base
        if base == NONE:
            choice = choose(item.text)
            asked, seconds, args, cascade = choice.asked, choice.seconds, dict(choice.args), choice.name
        rows.append(Row(item.id, item.split, item.text, item.expected, base, cascade, asked, seconds, args))
        if progress:
            mark = "ok" if same_route(cascade, item.expected) else f"WRONG (expected {item.expected})"
            progress(f"{item.id}: {cascade} {mark} {seconds:.2f}s")
    return rows


def evaluate(
    model: Any,
    settings: Settings,
    items: Sequence[ChoiceItem],
    route: Route,
    progress: Callable[[str], None] | None,
) -> ModelReport:
    """Load the model (a ``ModelChoice``) and run the items through the baseline and the choice."""
    from assistant.core.clock import SystemClock
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.types import ChatMessage, Completion, GenerationParams, collect
    from assistant.skillkit.registry import SkillParts, SkillRegistry, SkillRunner
    from assistant.skillkit.skill_choice import build_skill_choice

    report = ModelReport(model.label, str(model.path))
    started = time.perf_counter()
    backend = LlamaBackend.load(model.path, settings.model)
    report.load_seconds = time.perf_counter() - started
    try:

        def generate(messages: list[ChatMessage], params: GenerationParams) -> Completion:
            return collect(backend.stream_chat(messages, params, threading.Event()))

        runner = SkillRunner(SkillRegistry.discover(), SkillParts(settings, SystemClock(), None))
        never = lambda text, conversation_id: None  # noqa: E731 - declared, never run
        chooser = build_skill_choice(generate, skills=runner, memory=True, remind=never, note=never)
        report.first_seconds = chooser.choose("is the weather nice where you are?").seconds
        report.rows = run_items(lambda text: chooser.choose(text), route, items, progress)
    finally:
        backend.close()
    return report


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def print_reports(reports: Sequence[ModelReport], *, failures: bool) -> None:
    head = ["model", "split", "n", "rules right", "rules wrong->skill", "cascade right", "cascade wrong->skill",
            "asked/left", "added median", "added p95", "first"]  # fmt: skip
    lines = [head]
    for r in reports:
        for split in (*SPLITS, None):
            s = r.stats(split)
            lines.append([
                r.label, split or "all", str(s["items"]), _pct(s["baseline_right"]), _pct(s["baseline_wrong_skill"]),
                _pct(s["cascade_right"]), _pct(s["cascade_wrong_skill"]), f"{s['asked']}/{s['left_to_model']}",
                _secs(s["added_median_s"]), _secs(s["added_p95_s"]), f"{r.first_seconds:.1f}s",
            ])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
    if failures:
        for r in reports:
            wrong = [row for row in r.rows if row.cascade != row.expected]
            if wrong:
                print(f"\n{r.label}: routed wrong ({len(wrong)})")
            for row in wrong:
                print(f"  [{row.split}] {row.text!r}: {row.cascade} (expected {row.expected})")


def add_parser(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("choice", help="the model's choice of a skill vs the rules-only baseline, per model")
    p.add_argument(
        "--model", action="append", default=[], metavar="GGUF|NAME",
        help=f"a GGUF file or a bundled model ({', '.join(BUNDLED)}); repeat to compare (default: the configured model)",
    )  # fmt: skip
    p.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    p.add_argument("--limit", type=int, help="the first N items (after --split)")
    p.add_argument("--items", type=Path, help="a JSONL item file instead of the shipped set")
    p.add_argument("--json", action="store_true", help="print JSON (every row) instead of the table")
    p.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr, no list of wrong routes"
    )
    p.set_defaults(func=cmd_choice)


def cmd_choice(args: argparse.Namespace) -> int:
    from assistant.cli.eval_skills import choose_models
    from assistant.config import load_settings

    settings = load_settings(args.config)
    items = [i for i in load_items(args.items) if args.split in ("all", i.split)][: args.limit]
    route = baseline_router(settings)
    progress = None if args.quiet or args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    reports = [evaluate(m, settings, items, route, progress) for m in choose_models(settings, args.model)]
    if args.json:
        print(json.dumps({"items": len(items), "models": [r.as_dict() for r in reports]}, indent=2))
    else:
        print_reports(reports, failures=not args.quiet)
    return 0
