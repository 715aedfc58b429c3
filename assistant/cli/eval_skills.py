"""`assistant eval skills [--model A --model B]`: the fixed case suite (assistant.cli.skill_cases) run
against real models, side by side: pass rate per skill and how often each skill fell back to its template.

Each model runs in the real services (``build_services``: chat with its system prompt, the skill runner)
on a fixed clock, with memory, scheduler and notifications off and the feeds replaced by an in-memory reader
that holds the suite's headlines. Chat cases go through ``ChatService.prepare`` as a chat request does,
greedily by default (``--temperature`` for the API's 0.7); the skills sample with their own settings and
the model is loaded with a fixed seed, so a run is repeatable on one machine and build. Exit code 0 whatever the scores; 2 when a model cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from assistant.chat.turn import TurnRequest
from assistant.cli.skill_cases import (
    FEED_TITLES_PER_FEED,
    SKILLS,
    ChatCase,
    Headline,
    Suite,
    SummaryCase,
    Verdict,
    feed_entries,
    feed_headlines,
    score_chat,
    score_digest,
    score_summary,
    score_time,
    score_verse,
)
from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.feeds.in_memory import InMemoryFeeds
from assistant.llm.bundled import BUNDLED
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.skillkit.registry import SkillParts, SkillRunner

if TYPE_CHECKING:
    from assistant.services import Services

DEFAULT_SEED = 1234
SEUSS_BATCH = 1  # headlines per run of the seuss skill (at most its count's maximum, 10): one, so each
# headline's verdict and verse show on the progress line as soon as they are known
CHAT_TEMPERATURE = (
    0.0  # greedy: the model's most likely answer, the same on every run (the API's default is 0.7)
)


def add_parser(esub: argparse._SubParsersAction) -> None:
    s = esub.add_parser(
        "skills",
        help="a fixed suite of chat and skill cases on real models: pass rate and template fallbacks per skill",
    )
    s.add_argument(
        "--model", action="append", default=[], metavar="GGUF|NAME",
        help=f"a GGUF file or a bundled model ({', '.join(BUNDLED)}); repeat to compare side by side "
        "(default: the configured model)",
    )  # fmt: skip
    s.add_argument("--skills", help=f"comma-separated subset of {','.join(SKILLS)} (default all)")
    s.add_argument(
        "--repeat", type=int, default=1, help="run the suite this many times per model (default 1)"
    )
    s.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sampling seed (default {DEFAULT_SEED})")
    s.add_argument(
        "--temperature", type=float, default=CHAT_TEMPERATURE,
        help="sampling temperature of the chat and summarize cases (default 0: greedy; the chat API uses 0.7)",
    )  # fmt: skip
    s.add_argument(
        "--seuss-feeds", type=Path, metavar="DIR",
        help="seuss on the headlines of the feed files under DIR instead of its five fixed headlines: the first "
        f"{FEED_TITLES_PER_FEED} titles of each feed (files sorted by path, parsed by the daemon's own parser) "
        "with at least 3 words, 3/4 of them English (CMU dictionary), each title once",
    )  # fmt: skip
    s.add_argument("--seuss-per-feed", type=int, default=FEED_TITLES_PER_FEED, metavar="N",
                   help=f"with --seuss-feeds: titles taken from each feed (default {FEED_TITLES_PER_FEED})")  # fmt: skip
    s.add_argument("--seuss-every", type=int, default=1, metavar="K",
                   help="with --seuss-feeds: every K-th of those headlines, in order (default 1: all)")  # fmt: skip
    s.add_argument("--seuss-start", type=int, default=0, metavar="I",
                   help="with --seuss-feeds: the first headline taken, counted from 0 (default 0); "
                   "--seuss-every 2 is the even-indexed half (the one prompts are tuned on), with "
                   "--seuss-start 1 the odd-indexed half that confirms")  # fmt: skip
    s.add_argument(
        "--seuss-seconds", type=float, metavar="S",
        help="seuss's time budget per headline (default the skill's own, 8); 120 lets every headline have all "
        "its tries whatever the machine's load, so a run repeats",
    )  # fmt: skip
    s.add_argument("--cases", action="store_true", help="also print every case's answer and verdict")
    s.add_argument("--json", action="store_true", help="print JSON (every case) instead of a table")
    s.set_defaults(func=cmd_skills)


# --- running -------------------------------------------------------------------------------------------


class EvalClock:
    """A clock the suite sets before each case (time cases need a known instant)."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


@dataclass
class CaseResult:
    id: str
    skill: str
    verdict: Verdict
    output: str
    seconds: float
    round: int = 1
    title: str = ""  # a seuss case's headline

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "skill": self.skill,
            "round": self.round,
            **({"title": self.title} if self.title else {}),
            "passed": self.verdict.passed,
            "fell_back": self.verdict.fell_back,
            "checks": self.verdict.checks,
            "output": self.output,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class ModelReport:
    label: str
    path: str
    load_seconds: float = 0.0
    seconds: float = 0.0
    cases: list[CaseResult] = field(default_factory=list)

    def per_skill(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for skill in SKILLS:
            rows = [c for c in self.cases if c.skill == skill]
            if not rows:
                continue
            passed = sum(c.verdict.passed for c in rows)
            flags = [c.verdict.fell_back for c in rows if c.verdict.fell_back is not None]
            out[skill] = {
                "cases": len(rows),
                "passed": passed,
                "pass_rate": round(passed / len(rows), 3),
                "fallbacks": sum(flags) if flags else None,
                "fallback_rate": round(sum(flags) / len(flags), 3) if flags else None,
            }
            if skill == "seuss":
                out[skill].update(seuss_figures(rows))
        return out

    def as_dict(self) -> dict[str, Any]:
        total = len(self.cases)
        passed = sum(c.verdict.passed for c in self.cases)
        return {
            "model": self.label,
            "path": self.path,
            "load_seconds": round(self.load_seconds, 2),
            "seconds": round(self.seconds, 1),
            "passed": passed,
            "cases_total": total,
            "pass_rate": round(passed / total, 3) if total else None,
            "skills": self.per_skill(),
            "cases": [c.as_dict() for c in self.cases],
        }


def seuss_figures(rows: Sequence[CaseResult]) -> dict[str, Any]:
    """For seuss, over its headlines: the share with a model verse that passed every check (planted
    headlines, which should not get one, left out), the share of answers that rhyme and of those that
    repeat the prompt (model or fallback, every headline), and the seconds per headline."""
    real = [c for c in rows if "model_verse_used" in c.verdict.checks]
    model = sum(
        c.verdict.checks["model_verse_used"] and c.verdict.checks.get("passes_the_checks", True) for c in real
    )
    rhymed = sum(c.verdict.checks["rhymes"] for c in rows)
    repeated = sum(not c.verdict.checks["prompt_not_repeated"] for c in rows)
    return {
        "headlines": len(rows),
        "unplanted": len(real),
        "model_verses": model,
        "model_verse_rate": round(model / len(real), 3) if real else None,
        "rhymed": rhymed,
        "rhyme_rate": round(rhymed / len(rows), 3),
        "prompt_repeats": repeated,
        "seconds_per_headline": round(sum(c.seconds for c in rows) / len(rows), 2),
    }


Progress = Callable[[str, int], None]  # (what is running, how many cases it finished)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _over_feeds(services: Services, feeds: InMemoryFeeds) -> SkillRunner:
    """The daemon's skills reading ``feeds`` (fixed headlines) instead of the feed service."""
    runner = services.require("skills", services.skills)
    parts = SkillParts(services.settings, services.clock, services.worker, services.memory, feeds,
                       services.notifier, services.pages)  # fmt: skip
    return SkillRunner(runner.registry, parts)


def run_suite(services: Services, clock: EvalClock, suite: Suite, *, round_no: int = 1,
              progress: Progress | None = None, temperature: float = CHAT_TEMPERATURE) -> list[CaseResult]:  # fmt: skip
    """Every case of ``suite`` on built services (``assistant.services.Services`` with skills on)."""
    tick = progress or (lambda _what, _n: None)
    runner = services.require("skills", services.skills)
    results: list[CaseResult] = []

    def chat(case: ChatCase | SummaryCase) -> None:
        tick(f"{case.skill}: {case.id}", 0)
        params = GenerationParams(max_tokens=case.max_tokens, temperature=temperature)
        prepared = services.chat.prepare(TurnRequest([ChatMessage("user", case.prompt)], params))
        completion, secs = _timed(lambda: services.worker.generate_text(prepared.messages, params))
        answer = completion.text.strip()
        verdict = score_chat(case, answer) if isinstance(case, ChatCase) else score_summary(case, answer)
        results.append(CaseResult(case.id, case.skill, verdict, answer, secs, round_no))
        tick(f"{case.skill}: {case.id}", 1)

    if "chat" in suite.only:
        for c in suite.chat:
            chat(c)
    if "summarize" in suite.only:
        for s in suite.summaries:
            chat(s)
    if "time" in suite.only:
        for t in suite.times:
            tick(f"time: {t.id}", 0)
            clock.set(t.utc)
            result, secs = _timed(partial(runner.run, "time", {"phrase": True}, timezone=t.timezone))
            local = t.utc.astimezone(ZoneInfo(t.timezone))
            verdict = score_time(result.text, result.data, local)
            results.append(CaseResult(t.id, "time", verdict, result.text, secs, round_no))
            tick(f"time: {t.id} ({'passed' if verdict.passed else 'failed'}, {secs:.0f} s)", 1)
    if "seuss" in suite.only and suite.seuss:
        for first in range(0, len(suite.seuss), SEUSS_BATCH):  # the skill takes at most 10 headlines a run
            batch = suite.seuss[first : first + SEUSS_BATCH]
            tick(f"seuss: headlines {first + 1}-{first + len(batch)}", 0)
            seuss = _over_feeds(services, InMemoryFeeds(feed_entries(batch)))
            result, secs = _timed(partial(seuss.run, "seuss", {"count": len(batch), **suite.seuss_args}))
            by_key = {item["key"]: item for item in result.data["headlines"]}
            for h in batch:
                item = by_key.get(f"eval-{h.id}")
                verse, by_model = (
                    (item["verse"], bool(item["by_model"])) if item else ("(headline missing)", False)
                )
                results.append(CaseResult(h.id, "seuss", score_verse(h, verse, by_model), verse,
                                          secs / len(batch), round_no, title=h.title))  # fmt: skip
            for done in results[-len(batch) :]:
                source = "model" if done.verdict.checks.get("model_verse_used") else "fallback"
                rhyme = "rhymes" if done.verdict.checks["rhymes"] else "NO RHYME"
                tick(f"seuss: {done.id} ({source}, {rhyme}, {done.seconds:.0f} s) {done.output!r}", 1)
    if "digest" in suite.only:
        for name, headlines in suite.digests:
            tick(f"digest: {name}", 0)
            entries = feed_entries(headlines)
            digest = _over_feeds(services, InMemoryFeeds(entries))
            result, secs = _timed(partial(digest.run, "digest", {"overview": True}))
            results.append(CaseResult(name, "digest", score_digest(result.text, result.data, entries),
                                      result.text, secs, round_no))  # fmt: skip
            tick(f"digest: {name}", 1)
    return results


@dataclass(frozen=True)
class ModelChoice:
    label: str
    path: Path


def choose_models(settings: Settings, names: Sequence[str]) -> list[ModelChoice]:
    """Each ``--model`` as a checked GGUF path (bundled names resolved in the configured data dir); none
    given: the configured model. ModelFileError (exit 2) before anything runs when one is missing."""
    from assistant.llm.model_file import bundled_model_path, check_gguf, resolve_model_path

    if not names:
        label = settings.model.bundled if settings.model.path is None else Path(settings.model.path).name
        return [ModelChoice(label, resolve_model_path(settings))]
    chosen = []
    for name in names:
        if name in BUNDLED:
            chosen.append(ModelChoice(name, bundled_model_path(settings.data_dir, name)))
        else:
            path = check_gguf(Path(name).expanduser())
            chosen.append(ModelChoice(path.name, path))
    return chosen


def eval_settings(settings: Settings, data_dir: Path, seed: int) -> Settings:
    """The user's settings (model options kept) with a scratch data dir, a fixed seed, skills on, and
    memory, scheduler, notifications and real feeds off."""
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "model": settings.model.model_copy(update={"seed": seed}),
            "memory": settings.memory.model_copy(update={"enabled": False}),
            "scheduler": settings.scheduler.model_copy(update={"enabled": False}),
            "notify": settings.notify.model_copy(update={"enabled": False}),
            "feeds": settings.feeds.model_copy(update={"enabled": False}),
            "skills": settings.skills.model_copy(update={"enabled": True}),
        }
    )


def evaluate_model(choice: ModelChoice, settings: Settings, suite: Suite, *, repeat: int = 1, seed: int = DEFAULT_SEED,
                   progress: Progress | None = None, temperature: float = CHAT_TEMPERATURE) -> ModelReport:  # fmt: skip
    """Load ``choice`` (ModelFileError when it cannot be loaded) and run the suite ``repeat`` times."""
    from assistant.llm.llama import LlamaBackend
    from assistant.services import build_services

    report = ModelReport(choice.label, str(choice.path))
    with tempfile.TemporaryDirectory(prefix="assistant-eval-skills-") as tmp:
        s = eval_settings(settings, Path(tmp), seed)
        backend, report.load_seconds = _timed(lambda: LlamaBackend.load(choice.path, s.model))
        clock = EvalClock(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
        services = build_services(s, clock=clock, llm=backend)
        try:
            started = time.perf_counter()
            for r in range(1, repeat + 1):
                report.cases += run_suite(
                    services, clock, suite, round_no=r, progress=progress, temperature=temperature
                )
            report.seconds = time.perf_counter() - started
        finally:
            services.close()  # closes the backend too
    return report


# --- output --------------------------------------------------------------------------------------------


def _rate(n: int, total: int) -> str:
    return f"{n}/{total} ({100 * n / total:.0f}%)" if total else "-"


def summary_rows(reports: Sequence[ModelReport]) -> list[list[str]]:
    """Rows of the table: one per skill, then all; per model its pass rate and template fallbacks."""
    per = [r.per_skill() for r in reports]
    rows = []
    for skill in SKILLS:
        if not any(skill in p for p in per):
            continue
        row = [skill, str(max(p.get(skill, {}).get("cases", 0) for p in per))]
        for p in per:
            s = p.get(skill)
            if s is None:
                row += ["-", "-"]
                continue
            flags = [c for c in (s["fallbacks"],) if c is not None]
            row += [_rate(s["passed"], s["cases"]), _rate(flags[0], s["cases"]) if flags else "n/a"]
        rows.append(row)
    total = ["all", str(max(len(r.cases) for r in reports))]
    for r in reports:
        total += [_rate(sum(c.verdict.passed for c in r.cases), len(r.cases)), ""]
    rows.append(total)
    return rows


def headers(reports: Sequence[ModelReport]) -> list[str]:
    out = ["skill", "cases"]
    for r in reports:
        out += [f"{r.label} pass", f"{r.label} fallback"]
    return out


def markdown_table(reports: Sequence[ModelReport]) -> str:
    rows = [headers(reports), ["---"] * len(headers(reports)), *summary_rows(reports)]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def seuss_line(label: str, f: dict[str, Any]) -> str:
    n = f["headlines"]
    return (
        f"{label} seuss: {f['headlines']} headlines; model verse that passed every check "
        f"{_rate(f['model_verses'], f['unplanted'])}; rhyme {_rate(f['rhymed'], n)}; fallbacks "
        f"{_rate(f['fallbacks'] or 0, n)}; prompt repeated {f['prompt_repeats']}; "
        f"{f['seconds_per_headline']:.1f} s per headline"
    )


def print_table(reports: Sequence[ModelReport], *, cases: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if cases:
        for r in reports:
            table = Table(title=f"{r.label}: every case", show_lines=True)
            for col in ("skill", "case", "pass", "fell back", "failed checks", "output"):
                table.add_column(col, overflow="fold")
            for c in r.cases:
                failed = ", ".join(k for k, v in c.verdict.checks.items() if not v)
                fb = "-" if c.verdict.fell_back is None else ("yes" if c.verdict.fell_back else "no")
                table.add_row(c.skill, c.id, "yes" if c.verdict.passed else "NO", fb, failed, c.output[:300])
            console.print(table)
    table = Table(title="assistant eval skills: pass rate and template fallbacks per skill")
    for i, h in enumerate(headers(reports)):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in summary_rows(reports):
        table.add_row(*row)
    console.print(table)
    for r in reports:
        console.print(f"{r.label}: {r.path} (loaded in {r.load_seconds:.1f} s, suite {r.seconds:.0f} s)")
        seuss = r.per_skill().get("seuss")
        if seuss:
            console.print(seuss_line(r.label, seuss))
    console.print(
        "fallback = the skill used its template because the model's text failed the skill's check "
        "(time: its sentence; seuss: a verse; digest: the overview); n/a: no template (chat)"
    )


def pick(headlines: Sequence[Headline], start: int = 0, every: int = 1) -> list[Headline]:
    """Every ``every``-th headline from the ``start``-th (0-based): start 0 and 1 with every 2 are the two
    halves that do not overlap (tune on one, confirm on the other)."""
    return list(headlines[start::every])


def cmd_skills(args: argparse.Namespace) -> int:
    from assistant.config import load_settings

    only = frozenset(SKILLS)
    if args.skills:
        only = frozenset(s.strip() for s in args.skills.split(",") if s.strip())
        unknown = sorted(only - set(SKILLS))
        if unknown or not only:
            raise BadRequest(f"--skills takes {', '.join(SKILLS)} (got {', '.join(unknown) or 'nothing'})")
    if args.repeat < 1:
        raise BadRequest("--repeat must be at least 1")
    suite = Suite(only=only)
    if args.seuss_feeds is not None:
        if not args.seuss_feeds.is_dir():
            raise BadRequest(f"--seuss-feeds: {args.seuss_feeds} is not a folder")
        if args.seuss_every < 1 or args.seuss_start < 0:
            raise BadRequest("--seuss-every must be at least 1 and --seuss-start at least 0")
        headlines = pick(
            feed_headlines(args.seuss_feeds, args.seuss_per_feed), args.seuss_start, args.seuss_every
        )
        if not headlines:
            raise BadRequest(f"--seuss-feeds: no headlines in the feed files under {args.seuss_feeds}")
        suite = replace(suite, seuss=tuple(headlines))
    if args.seuss_seconds is not None:
        suite = replace(suite, seuss_args={"seconds": args.seuss_seconds})
    settings = load_settings(args.config)
    choices = choose_models(settings, args.model)
    options: dict[str, Any] = {"repeat": args.repeat, "seed": args.seed, "temperature": args.temperature}
    reports: list[ModelReport] = []
    if args.json:  # the JSON on stdout; what has finished on stderr, a line at a time

        def note(what: str, n: int, label: str = "") -> None:
            if n:
                print(f"{label}: {what} done", file=sys.stderr, flush=True)

        reports = [
            evaluate_model(c, settings, suite, progress=partial(note, label=c.label), **options)
            for c in choices
        ]
        print(json.dumps({**options, "models": [r.as_dict() for r in reports]},
                         indent=2, ensure_ascii=False))  # fmt: skip
        return 0
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        for c in choices:
            task = bar.add_task(f"{c.label}: loading", total=suite.size() * args.repeat)

            def tick(what: str, n: int, task: Any = task, label: str = c.label) -> None:
                bar.update(task, advance=n, description=f"{label}: {what}")

            reports.append(evaluate_model(c, settings, suite, progress=tick, **options))
            bar.update(task, description=f"{c.label}: done")
    print_table(reports, cases=args.cases)
    return 0
