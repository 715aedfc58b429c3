"""What the skill choice adds to a chat turn that ends in plain chat, end to end: the same questions through
``ChatService.reply`` with the choice off and on, in alternating blocks (off, on, off, on) on one loaded
model, greedy, a short answer. Besides the choice call itself, a turn after a choice finds the choice prompt
in llama.cpp's context and restores the chat's own prefix from the saved states.

    ASSISTANT_MODEL__N_THREADS=1 .venv/bin/python benchmarks/bench_skill_choice.py --model qwen0.5b
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

QUESTIONS = (
    "why do cats purr?",
    "who painted the Mona Lisa?",
    "give me a tip for sleeping better",
    "what is a prime number?",
    "how do bees make honey?",
    "name a good board game for four people",
)


def main() -> None:
    from assistant.chat.turn import TurnRequest
    from assistant.cli.eval_skills import choose_models, eval_settings
    from assistant.config import load_settings
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.types import ChatMessage, GenerationParams
    from assistant.services import build_services

    p = argparse.ArgumentParser()
    p.add_argument("--model", default="qwen0.5b")
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    settings = load_settings(None)
    model = choose_models(settings, [args.model])[0]
    with tempfile.TemporaryDirectory() as tmp:
        s = eval_settings(settings, Path(tmp), 1234)
        s = s.model_copy(update={"skills": s.skills.model_copy(update={"choice": True})})
        services = build_services(s, llm=LlamaBackend.load(model.path, s.model))
        services.worker.start()
        params = GenerationParams(max_tokens=args.max_tokens, temperature=0.0)
        times: dict[bool, list[float]] = {False: [], True: []}
        try:
            for r in range(args.rounds):
                for on in (False, True):
                    for q in QUESTIONS:
                        started = time.perf_counter()
                        services.chat.reply(TurnRequest([ChatMessage("user", q)], params, skill_choice=on))
                        if r or q is not QUESTIONS[0]:  # the first turn of a block warms its prefix
                            times[on].append(time.perf_counter() - started)
        finally:
            services.close()
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{model.label}: plain chat turn median {off:.2f}s off, {on:.2f}s on (+{on - off:.2f}s, x{on / off:.2f}); "
          f"{len(times[True])} turns each")  # fmt: skip


if __name__ == "__main__":
    main()
