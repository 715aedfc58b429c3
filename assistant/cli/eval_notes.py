"""`assistant eval notes [--model A --model B]`: notes stored as a user stores them, then questions about
them as people ask ("Is Tomas allergic to anything?"), answered through the chat path with memory on and
checked by code (assistant/evals/notes.json).

Each model runs in the real services with memory on (a scratch data dir: the real embedder, Chroma and the
keyword index), skills on, and the clock fixed as in ``assistant eval everyday``. The notes go in through
the memory service's ``add`` with source ``note`` (what ``POST /api/memories`` does), dated some days before
"today". Each question is a new conversation and is not stored, so every question sees the same notes.

An answer that holds the prompt's scaffolding (a heading of the recall blocks, a "[2026-03-18, the
user's note]" label, a "---" rule, a data delimiter) is counted wrong whatever else it says. Questions of
category ``unknown`` ask what no note says about the user's own life ("What's my brother's name?"): right
is saying so. Questions of category ``general`` are phrased with "my" and "I" but ask for general help
("How do I boil an egg?", "What's a good gift for my mum's 60th birthday?"): right is a sensible answer
(the check) that is not a refusal (``refuses``). Same dev/confirm split as everyday.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from assistant.cli.eval_everyday import (
    DEFAULT_SEED,
    EVAL_NOW,
    EVAL_ZONE,
    SPLITS,
    ModelChoice,
    Progress,
    Report,
    Result,
    add_common_arguments,
    ask,
    check_answer,
    choose_models,
    open_services,
    print_reports,
    stderr_progress,
)
from assistant.config import Settings
from assistant.core.errors import BadRequest

MAX_TOKENS = 64

# What only the prompt's own scaffolding looks like (memory/recall.py, assistant/core/recall.py, the
# orchestrator's rule between the recalled blocks and the user's words).
SCAFFOLDING = (
    re.compile(r"^\s*#{1,6}\s", re.MULTILINE),  # a markdown heading such as "## Memories"
    re.compile(r"\[\d{4}-\d{2}-\d{2}[^\]]*\]"),  # "[2026-03-18, the user's note]"
    re.compile(r"^\s*-{3,}\s*$", re.MULTILINE),  # the "---" rule
    re.compile(r"<<<|>>>"),  # data delimiters
    re.compile(r"\b(the user said|the user's note|you answered)\b", re.IGNORECASE),
    re.compile(r"\b(Recalled from|Untrusted material|data, not instructions)\b", re.IGNORECASE),
    re.compile(r"\bMemories\b"),
)


# Saying that it is not known ("I don't have any information about your brother"): right for an ``unknown``
# question, wrong for a ``general`` one.
REFUSAL = re.compile(
    r"\b(I|we)\s+(don't|do not|can't|cannot|am unable to|'m unable to)\s+(know|have|find|see|access|tell|help|answer)"
    r"|\bno (information|record|note|details)|\bnot (mentioned|specified|provided|stated|given|in your notes)"
    r"|\bI('m| am) not sure"
    r"|\byou (haven't|have not) (told|mentioned|said)|\bnothing you have told|\bunknown\b"
    r"|^\W*you (don't|do not) know\b",  # "You don't know.": the absence line's words said back
    re.IGNORECASE,
)


def refuses(answer: str) -> bool:
    """Whether ``answer`` says it does not know or cannot help."""
    return REFUSAL.search(answer) is not None


def scaffolding(answer: str) -> list[str]:
    """The pieces of prompt scaffolding in ``answer`` (none: an empty list)."""
    return [m.group(0).strip() for p in SCAFFOLDING if (m := p.search(answer))]


@dataclass(frozen=True)
class Note:
    id: str
    text: str
    days_ago: int


@dataclass(frozen=True)
class Question:
    id: str
    split: str
    category: str
    note: str | None
    question: str
    check: Mapping[str, Any]


def load_notes(path: Path | None = None) -> tuple[list[Note], list[Question]]:
    raw = path.read_text() if path else resources.files("assistant.evals").joinpath("notes.json").read_text()
    data = json.loads(raw)
    notes = [Note(n["id"], n["text"], int(n.get("days_ago", 1))) for n in data["notes"]]
    known = {n.id for n in notes}
    checks = data.get("checks", {})  # a check shared by several questions, named once
    questions = []
    for q in data["questions"]:
        if q["split"] not in SPLITS or (q.get("note") is not None and q["note"] not in known):
            raise ValueError(f"question {q['id']}: bad split or unknown note")
        check = checks[q["check"]] if isinstance(q["check"], str) else q["check"]
        questions.append(Question(q["id"], q["split"], q["category"], q.get("note"), q["question"], check))
    return notes, questions


def score(question: Question, answer: str) -> tuple[bool, list[str]]:
    """Right (checked by code, and no scaffolding) and the scaffolding found."""
    found = scaffolding(answer)
    right = check_answer(question.check, answer) and not found
    if question.category == "general":
        right = right and not refuses(answer)
    return right, found


def store_notes(memory: Any, notes: Sequence[Note]) -> dict[str, str]:
    """Add each note as a user does (source ``note``); the memory id of each note id."""
    return {
        n.id: memory.add(n.text, "note", created_at=EVAL_NOW - timedelta(days=n.days_ago)) for n in notes
    }


def run_questions(services: Any, notes: Sequence[Note], questions: Sequence[Question], *,
                  max_tokens: int = MAX_TOKENS, progress: Progress | None = None) -> list[Result]:  # fmt: skip
    memory = services.require("memory", services.memory)
    ids = store_notes(memory, notes)
    out = []
    for q in questions:
        started = time.perf_counter()
        answer = ask(services, q.question, max_tokens)
        passed, found = score(q, answer.text)
        extra: dict[str, Any] = {"scaffolding": found, "recalled_note": None}
        if q.note is not None:
            extra["recalled_note"] = ids[q.note] in answer.recalled
        out.append(Result(q.id, q.split, q.category, q.question, answer.text, passed,
                          time.perf_counter() - started, answer.shortcut, extra))  # fmt: skip
        if progress:
            progress(f"{q.id}: {'ok' if passed else 'WRONG'} {answer.text[:60]!r}")
    return out


def evaluate(choice: ModelChoice, settings: Settings, notes: Sequence[Note], questions: Sequence[Question], *,
             max_tokens: int = MAX_TOKENS, seed: int = DEFAULT_SEED, progress: Progress | None = None) -> Report:  # fmt: skip
    report = Report(choice.label, str(choice.path))
    with open_services(choice, settings, memory=True, seed=seed) as (services, loaded):
        report.load_seconds = loaded
        started = time.perf_counter()
        report.results = run_questions(services, notes, questions, max_tokens=max_tokens, progress=progress)
        report.seconds = time.perf_counter() - started
    return report


def add_parser(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("notes", help="questions about stored notes, answered with memory on, checked by code")
    add_common_arguments(p)
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help=f"per answer (default {MAX_TOKENS})")
    p.set_defaults(func=cmd_notes)


def cmd_notes(args: argparse.Namespace) -> int:
    from assistant.config import load_settings

    notes, questions = load_notes()
    chosen = [q for q in questions if args.split in ("all", q.split)][: args.limit or None]
    if not chosen:
        raise BadRequest("no questions match --split")
    settings = load_settings(args.config)
    reports = [
        evaluate(c, settings, notes, chosen, max_tokens=args.max_tokens, seed=args.seed,
                 progress=stderr_progress(c.label))  # fmt: skip
        for c in choose_models(settings, args.model)
    ]
    if args.json:
        print(json.dumps({"today": EVAL_NOW.isoformat(), "zone": EVAL_ZONE, "notes": len(notes),
                          "models": [_with_counts(r) for r in reports]}, indent=2, ensure_ascii=False))  # fmt: skip
        return 0
    print_reports(f"assistant eval notes: {len(notes)} notes, share right (dev / confirm / all)", reports)
    for r in reports:
        counts = _with_counts(r)
        print(f"{r.label}: answers with scaffolding {counts['with_scaffolding']}, right note recalled "
              f"{counts['note_recalled']}/{counts['about_a_note']}")  # fmt: skip
    return 0


def _with_counts(report: Report) -> dict[str, Any]:
    about = [r for r in report.results if r.extra.get("recalled_note") is not None]
    return {
        **report.as_dict(),
        "with_scaffolding": sum(bool(r.extra.get("scaffolding")) for r in report.results),
        "about_a_note": len(about),
        "note_recalled": sum(bool(r.extra["recalled_note"]) for r in about),
    }
