"""`assistant eval locomo [DIR] [--model A --model B]`: what memory is worth in answers. LoCoMo questions
about a long conversation the user had, answered by the daemon's own chat turn and scored as the LoCoMo
paper scores them (token F1 per category; assistant/evals/locomo.py), in three conditions on the same
questions:

- ``off``: no memory (the chat turn without recall): what the model guesses;
- ``recall``: the daemon as a user runs it (memory on: hybrid search, the relevance floor, the rendering);
- ``gold``: the question's evidence turns put where recall puts memories, rendered the same way (the ceiling
  of recall: perfect retrieval, the same prompt).

Per conversation the daemon's real services run in a scratch data dir (``assistant eval notes`` does the
same): the real memory (Chroma, FTS5, the ONNX embedder), a clock set to the day after the
conversation's last session. The conversation's turns go in as ``assistant eval retrieval`` stores them
(memory/eval.py ``as_memory``: the speaker's name in the text, the conversation's id, the session's date as
the time it was said, source ``note`` as ``assistant memory import`` stores what the user brings in), so
recall renders each with its date. Each question is its own new conversation through ``ChatService.reply``
(temperature 0, ``--max-tokens``, not stored in memory), asked as a user asks plus ``ANSWER_STYLE``.

Skills are off in all three conditions (their shortcuts and the model's choice of a skill; the rules layer
stays): the choice would be one more generation per question, and its ``memory`` choice would look memory
up in the ``off`` condition too. What is measured is question -> recall -> the model's answer.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.cli.eval_everyday import (
    DEFAULT_SEED,
    ModelChoice,
    Progress,
    choose_models,
    open_services,
    stderr_progress,
)
from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.core.recall import Recall, TurnRecord
from assistant.evals.locomo import (
    CATEGORIES,
    DEFAULT_PER_CATEGORY,
    DEFAULT_SAMPLE_SEED,
    Locomo,
    LocomoDataError,
    Question,
    declines,
    load_locomo,
    sample,
    score_answer,
    summarise,
)
from assistant.llm.bundled import BUNDLED
from assistant.llm.types import ChatMessage, GenerationParams

CONDITIONS = ("off", "recall", "gold")
MAX_TOKENS = 32
# The paper asks for "a short phrase"; F1 against a short reference punishes a sentence around the answer.
ANSWER_STYLE = "Answer in a few words."
DEFAULT_DIR = Path("../shared/data/locomo-dev")


def user_message(question: Question) -> str:
    return f"{question.text} {ANSWER_STYLE}"


class CapturingRecall:
    """A chat's memory hook that keeps the last ``Recall`` it gave (the items recalled into the prompt)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: Recall | None = None

    def recall(self, query: str, *, conversation_id: str, exclude_texts: Sequence[str]) -> Recall:
        self.last = self.inner.recall(query, conversation_id=conversation_id, exclude_texts=exclude_texts)
        return self.last

    def remember_turns(self, conversation_id: str, turns: Sequence[TurnRecord], at: Any) -> None:
        self.inner.remember_turns(conversation_id, turns, at)


def gold_recall(real: Any, memory: Any) -> Any:
    """A recall that selects the current question's evidence turns (``.evidence``: memory ids) and renders
    them as the daemon's recall (``real``, a memory.recall.MemoryRecall) renders what it selects."""
    from memory.recall import MemoryRecall
    from memory.service import Hit

    class GoldRecall(MemoryRecall):
        evidence: Sequence[str] = ()

        def select(self, query: str, *, conversation_id: str, exclude_texts: Sequence[str]) -> list[Hit]:
            records = [memory.get(i) for i in self.evidence]
            return [Hit(r, 1.0) for r in records if r is not None]

    # the same budget as recall's, fixed or following the model's reading speed (memory.recall_seconds)
    return GoldRecall(memory, k=real.k, token_budget=real.fixed_budget, min_similarity=real.min_similarity,
                      max_answers=real.max_answers, budget=real.budget)  # fmt: skip


def ingest(memory: Any, turns: Sequence[tuple[str, Mapping[str, Any]]], batch: int = 128) -> dict[str, str]:
    """The conversation's turns into memory as ``assistant eval retrieval`` stores them; corpus id -> memory id."""
    from memory.eval import as_memory

    ids: dict[str, str] = {}
    pending: list[tuple[str, Any]] = []
    for doc_id, doc in [*turns, ("", None)]:
        item = as_memory(doc_id, doc) if doc is not None else None
        if item is not None:
            pending.append((doc_id, item))
        if pending and (doc is None or len(pending) >= batch):
            ids.update(zip([d for d, _ in pending], memory.add_many([m for _, m in pending]), strict=True))
            pending = []
    return ids


def asked_at(turns: Sequence[tuple[str, Mapping[str, Any]]]) -> datetime:
    """The day after the conversation's last session: when the user asks about it."""
    from memory.eval import said_at

    said = [w for _, doc in turns if (w := said_at(doc.get("metadata") or {})) is not None]
    if not said:
        raise LocomoDataError("the conversation's turns carry no session_date_time")
    return max(said) + timedelta(days=1)


@dataclass
class Row:
    question: Question
    answers: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    declined: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    recalled: int = 0  # memories recalled (the recall condition)
    evidence_recalled: int = 0  # of them, evidence turns
    model_answered: dict[str, bool] = field(default_factory=dict)  # False: a rule or a skill answered

    def as_dict(self) -> dict[str, Any]:
        q = self.question
        return {
            "id": q.id, "conversation": q.conversation, "category": q.category, "category_name": q.category_name,
            "question": q.text, "reference": q.answer, "evidence": list(q.evidence), "answers": self.answers,
            "scores": {c: round(s, 4) for c, s in self.scores.items()}, "declined": self.declined,
            "seconds": {c: round(s, 2) for c, s in self.seconds.items()}, "recalled": self.recalled,
            "evidence_recalled": self.evidence_recalled, "model_answered": self.model_answered,
        }  # fmt: skip


def run_conversation(services: Any, turns: Sequence[tuple[str, Mapping[str, Any]]], questions: Sequence[Question],
                     *, conditions: Sequence[str] = CONDITIONS, max_tokens: int = MAX_TOKENS,
                     progress: Progress | None = None) -> list[Row]:  # fmt: skip
    """Ingest one conversation into ``services``' (fresh) memory and ask each question in each condition."""
    from assistant.chat.turn import TurnRequest

    memory = services.require("memory", services.memory)
    real = services.chat.memory
    if real is None:
        raise BadRequest("memory must be on for assistant eval locomo")
    ids = ingest(memory, turns)
    recall, gold = CapturingRecall(real), CapturingRecall(gold_recall(real, memory))
    chats = {}
    for condition, hook in (("off", None), ("recall", recall), ("gold", gold)):
        chat = copy.copy(services.chat)  # the same worker, store, personas and rules; its own recall
        chat.memory = hook
        chat.shortcuts = None  # no skills (the module's docstring says why): no shortcut, and no model's
        setattr(chat, "skill_choice", None)  # noqa: B010 - choice of a skill (where the orchestrator has one)
        chats[condition] = chat
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    rows = []
    for q in questions:
        row = Row(q)
        gold.inner.evidence = [ids[e] for e in q.evidence if e in ids]
        for condition in conditions:
            hook = recall if condition == "recall" else gold if condition == "gold" else None
            if hook is not None:
                hook.last = None
            started = time.perf_counter()
            request = TurnRequest([ChatMessage("user", user_message(q))], params,
                                  explicit=("temperature", "max_tokens"), remember=False)  # fmt: skip
            end = chats[condition].reply(request)
            row.seconds[condition] = time.perf_counter() - started
            answer = end.text.strip()
            row.answers[condition] = answer
            row.scores[condition] = score_answer(q.category, answer, q.answer)
            row.declined[condition] = declines(answer)
            row.model_answered[condition] = end.usage.completion_tokens > 0
            if condition == "recall" and hook is not None and hook.last is not None:
                got = {str(i.get("id")) for i in hook.last.items}
                row.recalled = len(got)
                row.evidence_recalled = len(got & set(gold.inner.evidence))
        rows.append(row)
        if progress:
            progress(f"{q.id} [{q.category_name}] ref={q.answer!r} "
                     + " ".join(f"{c}={row.scores[c]:.2f}:{row.answers[c][:40]!r}" for c in conditions))  # fmt: skip
    return rows


@dataclass
class ModelRun:
    label: str
    path: str
    conditions: Sequence[str]
    rows: list[Row] = field(default_factory=list)
    load_seconds: float = 0.0
    ingest_seconds: float = 0.0
    seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, Any]]:
        return summarise([r.as_dict() for r in self.rows], self.conditions)

    def as_dict(self, answers: bool = True) -> dict[str, Any]:
        recall_rows = [r for r in self.rows if r.question.evidence]
        out: dict[str, Any] = {
            "model": self.label, "path": self.path, "questions": len(self.rows),
            "load_seconds": round(self.load_seconds, 1), "ingest_seconds": round(self.ingest_seconds, 1),
            "seconds": round(self.seconds, 1), "summary": self.summary(),
            "evidence_recalled_share": round(sum(r.evidence_recalled > 0 for r in recall_rows) / len(recall_rows), 4)
            if recall_rows and "recall" in self.conditions else None,
            "model_answered": {c: sum(r.model_answered.get(c, False) for r in self.rows) for c in self.conditions},
        }  # fmt: skip
        if answers:
            out["rows"] = [r.as_dict() for r in self.rows]
        return out


def evaluate(choice: ModelChoice, settings: Settings, data: Locomo, questions: Sequence[Question], *,
             conditions: Sequence[str] = CONDITIONS, max_tokens: int = MAX_TOKENS, seed: int = DEFAULT_SEED,
             progress: Progress | None = None) -> ModelRun:  # fmt: skip
    run = ModelRun(choice.label, str(choice.path), conditions)
    for conversation in data.conversations:
        asked = [q for q in questions if q.conversation == conversation]
        if not asked:
            continue
        turns = data.turns[conversation]
        with open_services(choice, settings, memory=True, seed=seed, now=asked_at(turns)) as (
            services,
            loaded,
        ):
            run.load_seconds += loaded
            started = time.perf_counter()
            rows = run_conversation(services, turns, asked, conditions=conditions, max_tokens=max_tokens,
                                    progress=progress)  # fmt: skip
            elapsed = time.perf_counter() - started
            spent = sum(sum(r.seconds.values()) for r in rows)
            run.ingest_seconds += elapsed - spent
            run.seconds += elapsed
            run.rows.extend(rows)
    return run


# --- output --------------------------------------------------------------------------------------------


def table_lines(runs: Sequence[ModelRun]) -> list[str]:
    """A Markdown table: one row per category (adversarial: the share declined), F1 per model and condition."""
    head = ["category", "questions"] + [f"{r.label} {c}" for r in runs for c in r.conditions]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    summaries = [r.summary() for r in runs]
    for name in [*(CATEGORIES[n] for n in (4, 1, 2, 3)), "overall", CATEGORIES[5], "declined_answerable"]:
        first = summaries[0][runs[0].conditions[0]] if summaries else {}
        if name not in first:
            continue
        count = first[name]["questions"] if isinstance(first[name], dict) else ""
        label = {"overall": "**overall F1 (1-4)**", "adversarial": "adversarial (share declined)",
                 "declined_answerable": "declined, answerable (1-4)"}.get(name, name)  # fmt: skip
        cells = []
        for run, summary in zip(runs, summaries, strict=True):
            for c in run.conditions:
                v = summary[c].get(name)
                cells.append(f"{(v['score'] if isinstance(v, dict) else v):.3f}" if v is not None else "-")
        lines.append(f"| {label} | {count} | " + " | ".join(cells) + " |")
    return lines


def add_parser(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser(
        "locomo", help="LoCoMo questions answered by the daemon: F1 with memory off, recall, gold evidence"
    )
    p.add_argument("directory", type=Path, nargs="?", default=DEFAULT_DIR,
                   help=f"a locomo-dev folder (corpus.jsonl, queries.jsonl; default {DEFAULT_DIR})")  # fmt: skip
    p.add_argument(
        "--model", action="append", default=[], metavar="GGUF|NAME",
        help=f"a GGUF file or a bundled model ({', '.join(BUNDLED)}); repeat to compare (default: the configured model)",
    )  # fmt: skip
    p.add_argument("--conversations", help="comma-separated conversation ids (default all)")
    p.add_argument("--limit", type=int, default=DEFAULT_PER_CATEGORY,
                   help=f"questions per category per conversation (default {DEFAULT_PER_CATEGORY}; 0: all)")  # fmt: skip
    p.add_argument("--categories", help="comma-separated category numbers 1-5 (default all)")
    p.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help="comma-separated of off, recall, gold (default all)",
    )
    p.add_argument(
        "--sample-seed", type=int, default=DEFAULT_SAMPLE_SEED, help=f"(default {DEFAULT_SAMPLE_SEED})"
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"model seed (default {DEFAULT_SEED})")
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help=f"per answer (default {MAX_TOKENS})")
    p.add_argument("--json", action="store_true", help="print JSON (every answer) instead of a table")
    p.set_defaults(func=cmd_locomo)


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def choose(args: argparse.Namespace) -> tuple[Locomo, list[Question], list[str]]:
    """The data, the sampled questions and the conditions the arguments ask for (BadRequest: bad ones)."""
    try:
        data = load_locomo(args.directory)
    except LocomoDataError as exc:
        raise BadRequest(str(exc)) from None
    conversations = _csv(args.conversations)
    unknown = [c for c in conversations if c not in data.turns]
    if unknown:
        raise BadRequest(f"unknown conversation {', '.join(unknown)}; known: {', '.join(data.conversations)}")
    try:
        categories = [int(c) for c in _csv(args.categories)]
    except ValueError:
        raise BadRequest("--categories takes numbers 1-5") from None
    if any(c not in CATEGORIES for c in categories):
        raise BadRequest("--categories takes numbers 1-5")
    conditions = _csv(args.conditions)
    if not conditions or any(c not in CONDITIONS for c in conditions):
        raise BadRequest(f"--conditions takes {', '.join(CONDITIONS)}")
    questions = sample(data.questions, args.limit or None, args.sample_seed, conversations, categories)
    if not questions:
        raise BadRequest("no questions match --conversations/--categories")
    return data, questions, conditions


def cmd_locomo(args: argparse.Namespace) -> int:
    from assistant.config import load_settings

    data, questions, conditions = choose(args)
    settings = load_settings(args.config)
    runs = []
    for c in choose_models(settings, args.model):
        runs.append(evaluate(c, settings, data, questions, conditions=conditions, max_tokens=args.max_tokens,
                             seed=args.seed, progress=stderr_progress(c.label)))  # fmt: skip
    sampled = {
        "questions": len(questions), "per_category": args.limit or None, "sample_seed": args.sample_seed,
        "conversations": sorted({q.conversation for q in questions}), "answer_style": ANSWER_STYLE,
        "max_tokens": args.max_tokens,
    }  # fmt: skip
    if args.json:
        print(json.dumps({**sampled, "models": [r.as_dict() for r in runs]}, indent=2, ensure_ascii=False))
        return 0
    print(f"assistant eval locomo: {len(questions)} questions ({args.limit or 'all'} per category per conversation, "
          f"sample seed {args.sample_seed}); F1 per category (LoCoMo's scorer), adversarial: share declined")  # fmt: skip
    print("\n".join(table_lines(runs)))
    for r in runs:
        d = r.as_dict(answers=False)
        print(f"{r.label}: {r.path}; load {r.load_seconds:.1f} s, ingest {r.ingest_seconds:.0f} s, "
              f"{r.seconds:.0f} s in all; evidence recalled for {d['evidence_recalled_share']} of questions; "
              f"answered by the model: {d['model_answered']}")  # fmt: skip
    return 0
