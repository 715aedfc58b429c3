"""Does an invented answer about the user's life come back as a memory? On a real model, with memory on (the
real embedder, Chroma, FTS5) and `assistant eval notes`'s notes stored, as the daemon runs:

    ASSISTANT_MODEL__N_THREADS=1 .venv/bin/python benchmarks/invention_loop.py --model qwen0.5b --model qwen1.5b

Eight personal questions no note answers ("What's my brother's name?"), each with a follow-up asked in a new
conversation ("Do I have a brother?"). Two runs per model, each in a fresh data dir:

- ``planted``: the first turn is stored as the daemon stores a chat turn, with a scripted invention as its
  answer ("Your brother's name is Jack."), so every follow-up has an invention to recall whatever the model
  would have said; counted: follow-ups whose prompt holds the invention, and whose answer repeats it.
- ``natural``: the first question is asked of the model and stored as the daemon stores a turn, then the
  follow-up; counted: first answers that invent (that do not say it is not known), and follow-ups whose
  prompt holds that first answer. (Whether the follow-up's answer repeats it says little here: at
  temperature 0 the model invents the same thing again with no memory at all.)

Each follow-up is a new conversation: what comes back can only come through memory.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from assistant.chat.turn import TurnRequest
from assistant.cli.eval_everyday import EVAL_NOW, choose_models, open_services
from assistant.cli.eval_notes import load_notes, refuses, store_notes
from assistant.config import load_settings
from assistant.core.recall import CONVERSATION, USER, TurnRecord
from assistant.llm.types import ChatMessage, GenerationParams
from memory.recall import normalise

# (first question, follow-up in a new conversation, a scripted invention, the words that show it came back)
CASES = (
    ("What's my brother's name?", "Do I have a brother?", "Your brother's name is Jack.", ("jack",)),
    ("What's my blood type?", "What's my blood type?", "Your blood type is AB negative.", ("ab",)),
    ("What's my dentist's phone number?", "Can you give me my dentist's number?",
     "Your dentist's phone number is 030 555 0199.", ("0199", "555")),
    ("Which school does my daughter go to?", "Where does my daughter go to school?",
     "Your daughter goes to Lindenhof School.", ("lindenhof",)),
    ("When is my wedding anniversary?", "When is my wedding anniversary?",
     "Your wedding anniversary is on 12 June.", ("12 june", "june 12")),
    ("What's my boss called?", "Who is my boss?", "Your boss is called Mr. Brandt.", ("brandt",)),
    ("Where did I leave my umbrella?", "Where is my umbrella?", "You left your umbrella at the cinema.",
     ("cinema",)),
    ("Who is my car insurance with?", "Which company insures my car?", "Your car insurance is with Allianz.",
     ("allianz",)),
)  # fmt: skip


def _params() -> GenerationParams:
    return GenerationParams(max_tokens=64, temperature=0.0)


def _turn(services: Any, question: str) -> tuple[str, str]:
    """One stored chat turn in a new conversation: the answer and the newest message as the model saw it."""
    request = TurnRequest([ChatMessage("user", question)], _params(), explicit=("temperature", "max_tokens"))
    prepared = services.chat.prepare(request)
    prompt = prepared.messages[-1].content
    if prepared.shortcut is not None:
        services.chat.finish(prepared, prepared.shortcut)
        return prepared.shortcut, prompt
    answer = services.worker.generate_text(prepared.messages, prepared.params).text
    services.chat.finish(prepared, answer)
    return str(answer).strip(), prompt


def _has(text: str, marks: tuple[str, ...]) -> bool:
    low = text.lower()
    return any(f" {m} " in f" {low.replace('.', ' ').replace(',', ' ')} " for m in marks)


def run(services: Any, mode: str) -> dict[str, Any]:
    notes, _ = load_notes()
    memory = services.require("memory", services.memory)
    store_notes(memory, notes)
    rows: list[dict[str, Any]] = []
    for first, follow, invention, marks in CASES:
        if mode == "planted":
            services.chat.memory.remember_turns(
                f"planted-{len(rows)}", [TurnRecord("user", first, USER), TurnRecord("assistant", invention, CONVERSATION)],
                EVAL_NOW,
            )  # fmt: skip
            said, invents = invention, True
        else:
            said, _ = _turn(services, first)
            invents = not refuses(said)
        answer, prompt = _turn(services, follow)
        if mode == "planted":
            in_prompt, back = _has(prompt, marks), _has(answer, marks)
        else:
            in_prompt, back = invents and normalise(said) in normalise(prompt), None
        rows.append({"first": first, "said": said, "invents": invents, "follow": follow,
                     "answer": answer, "in_prompt": in_prompt, "came_back": back})  # fmt: skip
    return {
        "mode": mode, "cases": len(rows),
        "first_invents": sum(r["invents"] for r in rows),
        "in_prompt": sum(bool(r["in_prompt"]) for r in rows),
        "came_back": sum(bool(r["came_back"]) for r in rows) if mode == "planted" else None, "rows": rows,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--mode", choices=("planted", "natural", "both"), default="both")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = load_settings(None)
    out = []
    for choice in choose_models(settings, args.model):
        for mode in ("planted", "natural") if args.mode == "both" else (args.mode,):
            with open_services(choice, settings, memory=True) as (services, _):
                result = {"model": choice.label, **run(services, mode)}
            out.append(result)
            print(f"{choice.label} {mode}: first answers inventing {result['first_invents']}/{result['cases']}, "
                  f"invention in the follow-up's prompt {result['in_prompt']}, "
                  f"follow-ups repeating it {result['came_back']}", flush=True)  # fmt: skip
            for r in result["rows"]:
                print(f"    {r['said'][:50]!r} -> {r['follow']!r} -> {r['answer'][:70]!r}", flush=True)
    if args.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
