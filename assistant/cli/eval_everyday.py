"""`assistant eval everyday [--model A --model B]`: the questions people ask first (assistant/evals/everyday.jsonl:
facts, arithmetic, dates, times, units, short instructions, extraction from a sentence, a one-sentence
summary), answered through the daemon's chat path and checked by code, per model, category and split.

Each model runs in the real services (``build_services``, as ``assistant eval skills`` does) with memory,
scheduler, notifications and feeds off and skills on, so a question a skill shortcut answers ("what time is
it?") is answered by the skill, as in a chat. The clock is fixed at ``EVAL_NOW`` in ``EVAL_ZONE`` (Wednesday
18 March 2026, 09:30 Europe/Berlin): the date questions are relative to it. Greedy decoding, ``--max-tokens``
per answer (summaries get at least ``SUMMARY_TOKENS``).

Each item has an ``id``, a ``split`` ("dev": prompts are tuned on it; "confirm": held out, about a third),
a ``category`` and a ``check`` (``accept``: one of the words or phrases, none of ``reject``; ``number``: the
first or last number of the answer; ``regex``; ``all``: every pattern, at most ``max_sentences``; ``exact``:
the whole answer, punctuation around it aside).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from assistant.chat.turn import TurnRequest
from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.llm.bundled import BUNDLED
from assistant.llm.types import ChatMessage, GenerationParams

EVAL_ZONE = "Europe/Berlin"
EVAL_NOW = datetime(2026, 3, 18, 8, 30, tzinfo=UTC)  # 09:30 on Wednesday 18 March 2026 in Berlin
MAX_TOKENS = 64
SUMMARY_TOKENS = 96
SPLITS = ("dev", "confirm")
DEFAULT_SEED = 1234

# --- the question set and its checks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: str
    split: str
    category: str
    question: str
    check: Mapping[str, Any]


def split_rows(name: str, path: Path | None = None) -> list[dict[str, Any]]:
    """The rows of a JSONL evaluation set (``path``, or ``name`` shipped in assistant/evals), each with a
    ``split`` of SPLITS (a ValueError naming the line otherwise)."""
    text = path.read_text() if path else resources.files("assistant.evals").joinpath(name).read_text()
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("split") not in SPLITS:
            raise ValueError(f"line {n}: split must be one of {SPLITS}")
        rows.append(row)
    return rows


def load_items(name: str = "everyday.jsonl", path: Path | None = None) -> list[Item]:
    """The items of a JSONL question set: ``path``, or the one shipped in assistant/evals."""
    return [Item(r["id"], r["split"], r["category"], r["question"], r["check"]) for r in split_rows(name, path)]


_WORD_NUMBERS = {
    w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}  # fmt: skip
_WORD_NUMBERS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90})
_NUMBER_RE = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?!\w)|\b(" + "|".join(_WORD_NUMBERS) + r")\b",
    re.IGNORECASE,
)
_MARKUP_RE = re.compile(r"\*\*|__|`")
_SENTENCE_END_RE = re.compile(r"(?<!\d)[.!?](?=\s|$)")


def numbers(text: str) -> list[float]:
    """The numbers in ``text`` in order: digits (with thousands commas) and the words zero to ninety."""
    out = []
    for m in _NUMBER_RE.finditer(text):
        digits, word = m.group(1), m.group(2)
        out.append(float(digits.replace(",", "")) if digits else float(_WORD_NUMBERS[word.lower()]))
    return out


def has_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words (case-insensitive)."""
    return re.search(rf"(?<![\w]){re.escape(phrase.lower())}(?![\w])", text.lower()) is not None


def sentences(text: str) -> int:
    return max(1, len(_SENTENCE_END_RE.findall(text.strip())))


def check_answer(check: Mapping[str, Any], answer: str) -> bool:
    """Whether ``answer`` passes ``check`` (see the module doc for the kinds)."""
    text = _MARKUP_RE.sub("", answer).strip()
    kind = check["type"]
    flags = 0 if check.get("case") else re.IGNORECASE
    if kind == "accept":
        return any(has_phrase(text, v) for v in check["values"]) and not any(
            has_phrase(text, r) for r in check.get("reject", ())
        )
    if kind == "number":
        found = numbers(text)
        if not found:
            return False
        tol = max(float(check.get("tol", 0.0)), 1e-9)
        return any(abs(n - float(v)) <= tol for n in (found[0], found[-1]) for v in check["values"])
    if kind == "regex":
        return re.search(check["pattern"], text, flags) is not None
    if kind == "all":
        if "max_sentences" in check and sentences(text) > int(check["max_sentences"]):
            return False
        return all(re.search(p, text, flags) for p in check["patterns"])
    if kind == "exact":
        bare = text.strip(" \t\n.!?\"'")
        return any(bare == v if check.get("case") else bare.lower() == v.lower() for v in check["values"])
    raise ValueError(f"unknown check type {kind!r}")


# --- running -------------------------------------------------------------------------------------------


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


@dataclass(frozen=True)
class ModelChoice:
    label: str
    path: Path


def choose_models(settings: Settings, names: Sequence[str]) -> list[ModelChoice]:
    """Each ``--model`` (a bundled name or a GGUF path) as a checked path; none: the configured model."""
    from assistant.cli.eval_skills import choose_models as choose

    return [ModelChoice(c.label, c.path) for c in choose(settings, names)]


def run_settings(settings: Settings, data_dir: Path, seed: int, *, memory: bool) -> Settings:
    """The eval's settings: ``assistant eval skills``'s (scratch data dir, fixed seed, skills on; scheduler,
    notifications and feeds off), the eval's zone, and memory on or off."""
    from assistant.cli.eval_skills import eval_settings

    s = eval_settings(settings, data_dir, seed)
    return s.model_copy(
        update={"timezone": EVAL_ZONE, "memory": s.memory.model_copy(update={"enabled": memory})}
    )


@contextmanager
def open_services(choice: ModelChoice, settings: Settings, *, memory: bool, seed: int = DEFAULT_SEED,
                  now: datetime = EVAL_NOW) -> Iterator[tuple[Any, float]]:  # fmt: skip
    """The daemon's services on ``choice`` in a scratch data dir, and the seconds the model took to load."""
    from assistant.llm.llama import LlamaBackend
    from assistant.services import build_services

    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as tmp:
        s = run_settings(settings, Path(tmp), seed, memory=memory)
        started = time.perf_counter()
        backend = LlamaBackend.load(choice.path, s.model)
        loaded = time.perf_counter() - started
        services = build_services(s, clock=FixedClock(now), llm=backend)
        try:
            yield services, loaded
        finally:
            services.close()


@dataclass(frozen=True)
class Answer:
    text: str
    shortcut: bool = False  # a skill shortcut or a rule answered, not the model
    recalled: tuple[str, ...] = ()  # ids of the memories recalled into the prompt


def ask(services: Any, question: str, max_tokens: int) -> Answer:
    """One question through the chat path (``ChatService.prepare``: rules, skill shortcuts, recall, the
    persona's system prompt) in a new conversation, greedily. The turn is not stored (each question
    stands alone)."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    prepared = services.chat.prepare(
        TurnRequest([ChatMessage("user", question)], params, explicit=("temperature", "max_tokens"))
    )
    recalled = tuple(str(i["id"]) for i in prepared.recall.items if "id" in i)
    if prepared.shortcut is not None:
        return Answer(prepared.shortcut.strip(), True, recalled)
    completion = services.worker.generate_text(prepared.messages, prepared.params)
    return Answer(str(completion.text).strip(), False, recalled)


@dataclass
class Result:
    id: str
    split: str
    category: str
    question: str
    answer: str
    passed: bool
    seconds: float
    shortcut: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "split": self.split, "category": self.category, "question": self.question,
            "answer": self.answer, "passed": self.passed, "seconds": round(self.seconds, 2),
            "shortcut": self.shortcut, **self.extra,
        }  # fmt: skip


@dataclass
class Report:
    label: str
    path: str
    load_seconds: float = 0.0
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)

    def share(self, split: str | None = None, category: str | None = None) -> tuple[int, int]:
        rows = [r for r in self.results if split in (None, r.split) and category in (None, r.category)]
        return sum(r.passed for r in rows), len(rows)

    def categories(self) -> list[str]:
        return list(dict.fromkeys(r.category for r in self.results))

    def as_dict(self) -> dict[str, Any]:
        def rate(split: str | None = None, category: str | None = None) -> dict[str, Any]:
            ok, n = self.share(split, category)
            return {"passed": ok, "total": n, "rate": round(ok / n, 3) if n else None}

        return {
            "model": self.label, "path": self.path, "load_seconds": round(self.load_seconds, 2),
            "seconds": round(self.seconds, 1),
            "all": rate(), **{s: rate(s) for s in SPLITS},
            "categories": {c: {"all": rate(None, c), **{s: rate(s, c) for s in SPLITS}} for c in self.categories()},
            "results": [r.as_dict() for r in self.results],
        }  # fmt: skip


Progress = Callable[[str], None]


def run_items(services: Any, items: Sequence[Item], *, max_tokens: int = MAX_TOKENS,
              progress: Progress | None = None) -> list[Result]:  # fmt: skip
    out = []
    for item in items:
        budget = max(max_tokens, SUMMARY_TOKENS) if item.category == "summary" else max_tokens
        started = time.perf_counter()
        answer = ask(services, item.question, budget)
        passed = check_answer(item.check, answer.text)
        out.append(Result(item.id, item.split, item.category, item.question, answer.text, passed,
                          time.perf_counter() - started, answer.shortcut))  # fmt: skip
        if progress:
            progress(f"{item.id}: {'ok' if passed else 'WRONG'} {answer.text[:60]!r}")
    return out


def evaluate(choice: ModelChoice, settings: Settings, items: Sequence[Item], *, max_tokens: int = MAX_TOKENS,
             seed: int = DEFAULT_SEED, progress: Progress | None = None) -> Report:  # fmt: skip
    report = Report(choice.label, str(choice.path))
    with open_services(choice, settings, memory=False, seed=seed) as (services, loaded):
        report.load_seconds = loaded
        started = time.perf_counter()
        report.results = run_items(services, items, max_tokens=max_tokens, progress=progress)
        report.seconds = time.perf_counter() - started
    return report


# --- output --------------------------------------------------------------------------------------------


def _rate(ok: int, n: int) -> str:
    return f"{ok}/{n} ({100 * ok / n:.0f}%)" if n else "-"


def table_rows(reports: Sequence[Report], groups: Sequence[str]) -> list[list[str]]:
    """One row per group (and "all"): per model the share right on dev, confirm and both."""
    rows = []
    for group in [*groups, None]:
        row = [group or "all"]
        for r in reports:
            row += [_rate(*r.share(s, group)) for s in (*SPLITS, None)]
        rows.append(row)
    return rows


def print_reports(title: str, reports: Sequence[Report], *, failures: bool = True) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    groups = list(dict.fromkeys(c for r in reports for c in r.categories()))
    table = Table(title=title)
    table.add_column("category")
    for r in reports:
        for s in (*SPLITS, "all"):
            table.add_column(f"{r.label} {s}", justify="right")
    for row in table_rows(reports, groups):
        table.add_row(*row)
    console.print(table)
    for r in reports:
        console.print(f"{r.label}: {r.path} (loaded in {r.load_seconds:.1f} s, {r.seconds:.0f} s for "
                      f"{len(r.results)} questions)")  # fmt: skip
        if failures:
            for x in r.results:
                if not x.passed:
                    q = x.question.splitlines()[0]
                    console.print(f"  [{x.split}] {x.id}: {q!r} -> {x.answer!r}", markup=False, highlight=False)


def add_parser(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("everyday", help="everyday questions (facts, sums, dates, units, ...) checked by code, per model")
    add_common_arguments(p)
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help=f"per answer (default {MAX_TOKENS}; "
                   f"summaries at least {SUMMARY_TOKENS})")  # fmt: skip
    p.add_argument("--category", action="append", default=[], help="only this category (repeatable)")
    p.set_defaults(func=cmd_everyday)


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", action="append", default=[], metavar="GGUF|NAME",
        help=f"a GGUF file or a bundled model ({', '.join(BUNDLED)}); repeat to compare (default: the configured model)",
    )  # fmt: skip
    p.add_argument("--split", choices=[*SPLITS, "all"], default="all", help="which items (default all)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"model seed (default {DEFAULT_SEED})")
    p.add_argument("--limit", type=int, help="only the first N items (a quick look)")
    p.add_argument("--json", action="store_true", help="print JSON (every answer) instead of a table")


def select(items: Sequence[Item], split: str, limit: int | None, categories: Sequence[str] = ()) -> list[Item]:
    chosen = [i for i in items if split in ("all", i.split) and (not categories or i.category in categories)]
    if not chosen:
        raise BadRequest("no items match the --split/--category given")
    return chosen[:limit] if limit else chosen


def stderr_progress(label: str) -> Progress:
    return lambda line: print(f"{label}: {line}", file=sys.stderr, flush=True)


def cmd_everyday(args: argparse.Namespace) -> int:
    from assistant.config import load_settings

    items = select(load_items(), args.split, args.limit, args.category)
    settings = load_settings(args.config)
    choices = choose_models(settings, args.model)
    reports = [
        evaluate(c, settings, items, max_tokens=args.max_tokens, seed=args.seed, progress=stderr_progress(c.label))
        for c in choices
    ]
    if args.json:
        print(json.dumps({"today": EVAL_NOW.isoformat(), "zone": EVAL_ZONE, "max_tokens": args.max_tokens,
                          "models": [r.as_dict() for r in reports]}, indent=2, ensure_ascii=False))  # fmt: skip
    else:
        print_reports("assistant eval everyday: share right (dev / confirm / all)", reports)
    return 0
