"""`bench_chat --cold-restart` and `bench_chat --memory-turns N` (issue 28): the first token after a restart,
and every turn of a stored conversation with memory on, against llama.cpp's own llama-server.

Cold restart: each round starts every peer as a new process on the same GGUF and threads, waits until it
answers its health check (the model is loaded), sends one first chat of about 300 prompt tokens (the
daemon's default system prompt with today's calendar, a few notes and a question) and stops it; peers
alternate in order from round to round. Time to first token is from the request to the first text chunk.

- *daemon*: its prompt states on disk (``model.prompt_disk_mb``): the system prompt's state was written by
  an earlier start (a priming start before the rounds, as the first boot of a day does), so the first chat
  evaluates only what follows it;
- *daemon, no disk state* (``prompt_disk_mb = 0``): what the daemon did before, the whole prompt;
- *llama-server*: nothing kept across restarts, the whole prompt (sent with the same system text, so both
  evaluate the same tokens);
- *llama-server + slot restore*: started with ``--slot-save-path``; a priming start saved its slot after a
  chat with the same system text, and each round first restores it (``POST /slots/0?action=restore``, timed
  as part of the TTFT) before the chat: llama-server's own way of keeping a prompt across restarts, which a
  client has to drive.

Memory turns: one stored conversation of N turns through the daemon's API (``conversation_id``, memory on,
five notes stored first, ``"memory": true`` as the daemon's own clients send), against llama-server given the
whole history each turn (its prompt cache reuses the prefix; no recall): TTFT, decode tokens/s and prompt
tokens per turn, so the cost of recall is a figure.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from assistant.config import Settings

NOTES = (
    "Notes the user asked me to keep: the bike is a green Brompton bought in 2021 and due for a service in "
    "spring; the cat is called Miso, eats salmon treats and sees the vet on the first Tuesday of each month; "
    "the sister's birthday is on the 12th of March and she likes books about gardens; the farmers' market is "
    "open on Saturdays from 8 to 13 and the bakery next to it sells rye bread until noon; the car is a blue "
    "Skoda with an inspection due in June; the landlord's number is kept in the blue folder on the shelf; the "
    "recycling goes out on Thursday evenings and the paper on every other Monday."
)
QUESTION = "Given those notes, what should I do this Saturday morning, and what should I buy for the cat?"
TURNS = (
    "Hi! Can you help me plan my week?",
    "What colour is my bike?",
    "What is my cat called?",
    "Remind me what I should buy for the cat.",
    "When is my sister's birthday?",
    "Which day is the market open?",
    "What did I say about my bike?",
    "Give me one tip for sleeping well.",
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What should I cook tonight with rice and eggs?",
    "Which day does the recycling go out?",
    "What is my car?",
    "Suggest a present for my sister.",
    "How long should I boil an egg?",
    "When does the cat see the vet?",
    "Name a good book about gardens.",
    "What time does the market close?",
    "What is 15% of 80?",
    "Thanks, summarize what we talked about in one sentence.",
)
MEMORY_NOTES = (
    "My bike is a green Brompton, bought in 2021.",
    "My cat is called Miso and likes salmon treats.",
    "My sister's birthday is on the 12th of March.",
    "The farmers' market is open on Saturdays from 8 to 13.",
    "Buy cat litter and salmon treats on Friday.",
)


def default_system_text(settings: Settings) -> str:
    """The daemon's own system text for a chat without a client system message, today in its zone."""
    from assistant.chat.personas import PersonaBook, dated_system_prompt
    from assistant.core.localtime import get_zone

    now = datetime.now(UTC).astimezone(get_zone(settings.timezone))
    return dated_system_prompt(PersonaBook.from_config(settings.personas).get(None).system_prompt, now)


def _daemon_toml(settings: Settings, model_path: Path, disk_mb: int, memory: bool) -> str:
    ms = settings.model
    return (
        f'timezone = "{settings.timezone}"\n[server]\nstream_interval_ms = {settings.server.stream_interval_ms}\n'
        f'[model]\npath = "{model_path}"\nn_threads = {ms.n_threads}\nn_ctx = {ms.n_ctx}\nn_batch = {ms.n_batch}\n'
        f"flash_attn = {'true' if ms.flash_attn else 'false'}\nprompt_disk_mb = {disk_mb}\n"
        f"[memory]\nenabled = {'true' if memory else 'false'}\n[scheduler]\nenabled = false\n"
        f"[notify]\nenabled = false\n[skills]\nenabled = false\n"
    )


@contextlib.contextmanager
def _daemon(
    settings: Settings, model_path: Path, data_dir: Path, disk_mb: int, memory: bool = False
) -> Iterator[str]:
    from tests.daemon import start_daemon

    with start_daemon(data_dir, config_toml=_daemon_toml(settings, model_path, disk_mb, memory)) as d:
        yield d.url


@contextlib.contextmanager
def _server(binary: str, model_path: Path, ms: Any, slots: Path | None = None) -> Iterator[str]:
    from benchmarks.bench_chat import _llama_server

    extra = ["--slot-save-path", str(slots)] if slots is not None else []
    with _llama_server(binary, model_path, ms, *extra) as url:
        yield url


def first_chat(
    url: str, messages: list[dict[str, str]], max_tokens: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One streamed chat: TTFT (s), decode tok/s, prompt and completion tokens, the text."""
    from assistant.core.openai_stream import delta_text, iter_chunks
    from benchmarks.bench_chat import _run, _stamps_of, stream_raw

    start, raw, reads = stream_raw(url, messages, max_tokens, extra)
    stamps, tokens = _stamps_of(raw, reads)
    run = _run(stamps, start, tokens)
    text, usage, conversation = "", {}, None
    for chunk in iter_chunks(line.decode("utf-8") for line in raw.splitlines()):
        text += delta_text(chunk) or ""
        usage = chunk.get("usage") or usage
        conversation = chunk.get("conversation_id", conversation)
    return {
        "ttft_s": run.ttft_s,
        "decode_tok_s": run.decode_tok_s,
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "completion_tokens": int(usage.get("completion_tokens", 0)),
        "text": text,
        "conversation_id": conversation,
    }


def _slot(url: str, action: str, name: str) -> float:
    start = time.perf_counter()
    r = httpx.post(f"{url}/slots/0?action={action}", json={"filename": name}, timeout=120)
    r.raise_for_status()
    return time.perf_counter() - start


def main_cold_restart(
    settings: Settings, model_path: Path, rounds: int, llama_server: str | None
) -> dict[str, Any]:
    ms = settings.model
    system = default_system_text(settings)
    user = f"{NOTES}\n\n{QUESTION}"
    daemon_messages = [{"role": "user", "content": user}]  # the daemon adds its own system prompt
    server_messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    prime_messages = [{"role": "system", "content": system}, {"role": "user", "content": "Hello!"}]
    server_extra = {"repeat_penalty": ms.repeat_penalty}
    runs: dict[str, list[dict[str, Any]]] = {"daemon": [], "daemon_no_disk": []}
    if llama_server:
        runs.update({"llama_server": [], "llama_server_slot_restore": []})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        disk_dir, plain_dir, slots = tmp / "daemon", tmp / "plain", tmp / "slots"
        slots.mkdir()
        # Priming: the daemon's first start writes its system prompt state; llama-server saves a slot.
        with _daemon(settings, model_path, disk_dir, 64) as url:
            first_chat(url, [{"role": "user", "content": "Hello!"}], 4)
        if llama_server:
            with _server(llama_server, model_path, ms, slots) as url:
                first_chat(url, prime_messages, 4, server_extra)
                _slot(url, "save", "prime.bin")

        def daemon(disk: bool) -> dict[str, Any]:
            with _daemon(settings, model_path, disk_dir if disk else plain_dir, 64 if disk else 0) as url:
                return first_chat(url, daemon_messages, 16)

        def server(restore: bool) -> dict[str, Any]:
            assert llama_server is not None
            with _server(llama_server, model_path, ms, slots if restore else None) as url:
                restored = _slot(url, "restore", "prime.bin") if restore else 0.0
                out = first_chat(url, server_messages, 16, server_extra)
                out["ttft_s"] += restored
                out["restore_s"] = restored
                return out

        peers = [("daemon", lambda: daemon(True)), ("daemon_no_disk", lambda: daemon(False))]
        if llama_server:
            peers += [
                ("llama_server", lambda: server(False)),
                ("llama_server_slot_restore", lambda: server(True)),
            ]
        for i in range(rounds):
            order = (
                peers[i % len(peers) :] + peers[: i % len(peers)]
            )  # a different peer goes first each round
            for name, fn in order:
                runs[name].append(fn())
    result: dict[str, Any] = {
        "model": model_path.name,
        "threads": ms.n_threads,
        "n_batch": ms.n_batch,
        "rounds": rounds,
        "runs": runs,
    }
    for name, rs in runs.items():
        result[name] = {
            "ttft_s": statistics.median(r["ttft_s"] for r in rs),
            "best_ttft_s": min(r["ttft_s"] for r in rs),
            "prompt_tokens": rs[0]["prompt_tokens"],
        }
    if llama_server:
        d, s = runs["daemon"], runs["llama_server"]
        result["ratio_ttft_daemon_over_llama_server"] = (
            result["daemon"]["ttft_s"] / result["llama_server"]["ttft_s"]
        )
        result["ratio_ttft_daemon_over_llama_server_per_round"] = statistics.median(
            a["ttft_s"] / b["ttft_s"] for a, b in zip(d, s, strict=True)
        )
        result["ratio_ttft_daemon_over_llama_server_slot_restore"] = (
            result["daemon"]["ttft_s"] / result["llama_server_slot_restore"]["ttft_s"]
        )
    result["ratio_ttft_disk_over_no_disk"] = result["daemon"]["ttft_s"] / result["daemon_no_disk"]["ttft_s"]
    result["same_answer_disk_and_no_disk"] = runs["daemon"][0]["text"] == runs["daemon_no_disk"][0]["text"]
    return result


def render_cold(result: dict[str, Any]) -> str:
    lines = [
        f"cold restart: model {result['model']}, {result['threads']} threads, n_batch {result['n_batch']}, "
        f"median of {result['rounds']} restarts per peer",
        f"{'peer':<40}{'prompt tokens':>14}{'TTFT ms':>10}{'best':>8}",
    ]
    labels = {
        "daemon": "daemon, system prompt state on disk",
        "daemon_no_disk": "daemon, no disk state (prompt_disk_mb 0)",
        "llama_server": "llama-server",
        "llama_server_slot_restore": "llama-server + slot restore (timed)",
    }
    for key, label in labels.items():
        if key in result:
            r = result[key]
            lines.append(
                f"{label:<40}{r['prompt_tokens']:>14}{r['ttft_s'] * 1000:>10.0f}{r['best_ttft_s'] * 1000:>8.0f}"
            )
    for key in (
        "ratio_ttft_daemon_over_llama_server",
        "ratio_ttft_daemon_over_llama_server_per_round",
        "ratio_ttft_daemon_over_llama_server_slot_restore",
        "ratio_ttft_disk_over_no_disk",
    ):
        if key in result:
            lines.append(f"{key}: {result[key]:.3f}")
    lines.append(f"same answer with and without the disk state: {result['same_answer_disk_and_no_disk']}")
    return "\n".join(lines)


def main_memory_turns(
    settings: Settings, model_path: Path, turns: int, llama_server: str | None
) -> dict[str, Any]:
    """One stored conversation of ``turns`` turns with memory on, against llama-server given the history."""
    ms = settings.model
    questions = [TURNS[i % len(TURNS)] for i in range(turns)]
    out: dict[str, Any] = {"model": model_path.name, "threads": ms.n_threads, "turns": turns}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with _daemon(settings, model_path, tmp / "daemon", 64, memory=True) as url:
            for note in MEMORY_NOTES:
                httpx.post(
                    url + "/api/memories", json={"text": note, "source": "note"}, timeout=120
                ).raise_for_status()
            conversation: str | None = None
            rows = []
            for q in questions:
                extra: dict[str, Any] = {"memory": True}
                if conversation:
                    extra["conversation_id"] = conversation
                r = first_chat(url, [{"role": "user", "content": q}], 48, extra)
                conversation = r["conversation_id"] or conversation
                rows.append(r)
            out["daemon_memory_on"] = rows
        if llama_server:
            system = default_system_text(settings)
            with _server(llama_server, model_path, ms) as url:
                history: list[dict[str, str]] = [{"role": "system", "content": system}]
                rows = []
                for q in questions:
                    history.append({"role": "user", "content": q})
                    r = first_chat(url, history, 48, {"repeat_penalty": ms.repeat_penalty})
                    history.append({"role": "assistant", "content": r["text"]})
                    rows.append(r)
                out["llama_server"] = rows
    return out


def render_memory(result: dict[str, Any]) -> str:
    d = result["daemon_memory_on"]
    s = result.get("llama_server")
    head = "| turn | daemon, memory on: prompt tokens, TTFT ms, decode tok/s |"
    lines = [
        f"memory turns: model {result['model']}, {result['threads']} threads, {result['turns']} turns",
        head + (" llama-server, history resent: prompt tokens, TTFT ms, decode tok/s |" if s else ""),
        "|---|---|" + ("---|" if s else ""),
    ]
    for i, a in enumerate(d):
        row = f"| {i + 1} | {a['prompt_tokens']}, {a['ttft_s'] * 1000:.0f}, {a['decode_tok_s']:.1f} |"
        if s:
            b = s[i]
            row += f" {b['prompt_tokens']}, {b['ttft_s'] * 1000:.0f}, {b['decode_tok_s']:.1f} |"
        lines.append(row)
    follow = d[1:]
    lines.append(
        f"daemon follow-ups: median TTFT {statistics.median(r['ttft_s'] for r in follow) * 1000:.0f} ms, "
        f"decode {statistics.median(r['decode_tok_s'] for r in follow):.1f} tok/s"
    )
    if s:
        follow_s = s[1:]
        lines.append(
            f"llama-server follow-ups: median TTFT {statistics.median(r['ttft_s'] for r in follow_s) * 1000:.0f} ms, "
            f"decode {statistics.median(r['decode_tok_s'] for r in follow_s):.1f} tok/s"
        )
    return "\n".join(lines)
