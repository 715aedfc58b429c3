"""A month of use compressed into half an hour: does the daemon's memory or its open files grow?

    nice .venv/bin/python -m benchmarks.bench_soak [--minutes 30] [--chat-every 4] [--prompt-cache-mb 256]
        [--json FILE]

One real daemon (the bundled model, memory on with the ONNX embedder, feeds, scheduler, notifications) on a
fresh data dir. Each minute stands for a day: three schedules fire every minute (the time skill in two
zones, and the digest, which asks the model for an overview and stores and notifies its result), the
three feeds of a local feed server on 127.0.0.1 are refreshed (five new items each per "day"; the feed
keeps its newest 500), the user adds a note to memory and starts a new conversation; and a chat (streamed
or not, every fourth one hung up after two chunks) goes to the daemon every few seconds, continuing one of
the recent conversations, with recall over everything stored so far.

The daemon's PSS and open file descriptors are read after a warm-up (every path run once: a refresh, each
schedule, a note, a search, a chat of each kind) and then once a minute; the table gives them at the start
(after the warm-up) and at the end (idle, after the last minute), their range and a least-squares slope
over the run, then the size of each database in the data dir. Any chat answered with
something other than 200 or 429 is listed and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

from tests.daemon import start_daemon
from tests.feeds_server import Handler, Reply, serve
from tests.operations.test_load_real import daemon_usage, wait_idle

FEEDS = ("garden", "cycling", "music")
NEW_ITEMS_PER_DAY = 5
ITEMS_PER_FETCH = 20


def soak_config(queue_size: int = 8, prompt_cache_mb: int = 256, idle_s: float = 600) -> str:
    return (
        "[server]\n"
        f"queue_size = {queue_size}\n"
        "[model]\n"
        "n_ctx = 2048\n"
        "n_threads = 1\n"  # see tests/operations/test_load_real.py load_config: the machine's cores are shared
        "max_tokens = 24\n"
        f"prompt_cache_mb = {prompt_cache_mb}\n"  # 256 as shipped: RAM filled with saved prompt states
        f"prompt_cache_idle_s = {idle_s}\n"  # 600 as shipped: states unused this long are dropped
        "[memory]\n"
        "enabled = true\n"
        "[feeds]\n"
        'allowed_networks = ["127.0.0.0/8"]\n'
        "[scheduler]\n"
        "misfire_grace_seconds = 30\n"
    )


def feed_route(name: str, day: list[int]) -> Any:
    """An RSS feed whose newest ITEMS_PER_FETCH items move on by NEW_ITEMS_PER_DAY each simulated day."""

    def reply(_handler: Handler) -> Reply:
        newest = (day[0] + 1) * NEW_ITEMS_PER_DAY
        items = []
        for n in range(newest, max(newest - ITEMS_PER_FETCH, 0), -1):
            when = format_datetime(datetime.fromtimestamp(1_700_000_000 + n * 3600, UTC))
            items.append(
                f"<item><title>{name.title()} news {n}: item number {n} of the {name} feed</title>"
                f"<link>http://127.0.0.1/{name}/{n}</link><guid>{name}-{n}</guid><pubDate>{when}</pubDate>"
                f"<description>Story {n} about {name}, with a few words of text.</description></item>"
            )
        body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name.title()} feed</title>'
                f"<link>http://127.0.0.1/{name}</link>{''.join(items)}</channel></rss>")
        return Reply(200, body.encode(), [("Content-Type", "application/rss+xml")])

    return reply


@dataclass
class Sample:
    minute: float
    pss_mib: float
    uss_mib: float
    rss_mib: float
    fds: int


@dataclass
class Chats:
    codes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(self, code: str, seconds: float, detail: str = "") -> None:
        self.codes[code] = self.codes.get(code, 0) + 1
        if code not in ("200", "429", "hangup"):
            self.failures.append(f"{code}: {detail}"[:300])
        elif code == "200":
            self.seconds.append(seconds)


def chat(c: httpx.Client, n: int, day: int, chats: Chats) -> None:
    conv = f"day-{max(day - n % 3, 0)}"  # today's conversation or one of the two before
    body = {"messages": [{"role": "user", "content": f"Day {day}, message {n}: what should I do in the garden?"}],
            "conversation_id": conv, "stream": n % 2 == 0}
    started = time.monotonic()
    try:
        if not body["stream"]:
            r = c.post("/v1/chat/completions", json=body)
            chats.add(str(r.status_code), time.monotonic() - started, r.text)
            return
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                r.read()
                chats.add(str(r.status_code), 0.0, r.text)
                return
            chunks = 0
            for line in r.iter_lines():
                if line.startswith("data:") and '"content"' in line:
                    chunks += 1
                    if n % 4 == 0 and chunks >= 2:
                        chats.add("hangup", 0.0)
                        return
                if line == "data: [DONE]":
                    chats.add("200", time.monotonic() - started)
                    return
            chats.add("no-done", 0.0, "the stream ended without [DONE]")
    except httpx.HTTPError as exc:
        chats.add("error", 0.0, f"{type(exc).__name__}: {exc}")


def warm_up(c: httpx.Client, schedules: list[dict[str, Any]], chats: Chats) -> None:
    """Every path once before the first reading: a refresh, each schedule run now, a note, a search and a
    chat of each kind (streamed, plain, hung up)."""
    c.post("/api/feeds/refresh").raise_for_status()
    for s in schedules:
        c.post(f"/api/schedules/{s['id']}/run").raise_for_status()
    c.post("/api/memories", json={"text": "Day 0: planted the tomatoes by the shed."}).raise_for_status()
    c.get("/api/memories/search", params={"q": "tomatoes"}).raise_for_status()
    for n in (1, 2, 4):  # plain, streamed, streamed and hung up
        chat(c, n, 0, chats)


def sizes(data_dir: Path) -> dict[str, int]:
    """Bytes of each SQLite database (with its -wal), the Chroma dir, and the whole data dir (models aside)."""
    out: dict[str, int] = {}
    for path in sorted(data_dir.rglob("*.sqlite3")):
        rel = path.relative_to(data_dir).as_posix()
        wal = path.with_name(path.name + "-wal")
        out[rel] = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    chroma = data_dir / "memory" / "chroma"
    if chroma.is_dir():
        out["memory/chroma/ (all files)"] = sum(p.stat().st_size for p in chroma.rglob("*") if p.is_file())
    out["data dir without models/"] = sum(
        p.stat().st_size for p in data_dir.rglob("*") if p.is_file() and "models" not in p.relative_to(data_dir).parts
    )
    return out


def pss_by_mapping(pid: int) -> dict[str, float]:
    """The process's PSS in MiB by kind of mapping (psutil's reading of ``/proc/<pid>/smaps``): the brk heap,
    anonymous mappings (malloc's arenas and its large blocks, thread stacks, llama.cpp's and ONNX Runtime's
    buffers) under and over 8 MiB, and file mappings by name ending (the GGUF, shared libraries, Chroma's
    index files)."""
    import psutil

    out: dict[str, float] = {}
    for m in psutil.Process(pid).memory_maps(grouped=False):
        path = m.path
        if path.startswith("[") and not path.startswith("[anon"):
            kind = path
        elif not path or path.startswith("[anon"):
            kind = "anon >= 8 MiB maps" if m.size >= 8 << 20 else "anon < 8 MiB maps"
        else:
            name = Path(path.replace(" (deleted)", "")).name
            kind = "file *.so" if ".so" in name else "file *" + (Path(name).suffix or name)
        out[kind] = out.get(kind, 0.0) + m.pss / 2**20
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def slope_per_hour(samples: list[Sample], attr: str) -> float:
    if len(samples) < 3:
        return 0.0
    xs = [s.minute / 60 for s in samples]
    ys = [float(getattr(s, attr)) for s in samples]
    return statistics.linear_regression(xs, ys).slope


def run(minutes: int, chat_every: float, data_dir: Path, cache_mb: int = 256, idle_s: float = 600,
        settle: float = 0) -> dict[str, Any]:  # fmt: skip
    day = [0]
    chats = Chats()
    samples: list[Sample] = []
    with serve() as feeds_server, start_daemon(data_dir, config_toml=soak_config(prompt_cache_mb=cache_mb, idle_s=idle_s)) as d, httpx.Client(
        base_url=d.url, timeout=httpx.Timeout(300.0, connect=10.0)
    ) as c:
        for name in FEEDS:
            url = feeds_server.route(f"/{name}.xml", feed_route(name, day))
            c.post("/api/feeds", json={"url": url}).raise_for_status()
        schedules = [
            c.post("/api/schedules", json={"skill": "time", "schedule": "every minute"}).raise_for_status().json(),
            c.post("/api/schedules", json={"skill": "time", "schedule": "every minute",
                                           "timezone": "America/New_York"}).raise_for_status().json(),
            c.post("/api/schedules", json={"skill": "digest", "schedule": "every minute",
                                           "args": {"max_tokens": 24}}).raise_for_status().json(),
        ]
        pid = d.proc.pid
        warm_up(c, schedules, chats)
        u = daemon_usage(pid)
        samples.append(Sample(0.0, u["pss"] / 2**20, u["uss"] / 2**20, u["rss"] / 2**20, u["fds"]))
        print(f"[warm-up] PSS {samples[-1].pss_mib:.1f} MiB, fds {u['fds']}", flush=True)
        breakdown = {"start": pss_by_mapping(pid)}
        started = time.monotonic()
        end = started + minutes * 60
        done = threading.Event()

        def chatter() -> None:  # its own thread: a slow answer delays the next chat, not the next day
            with httpx.Client(base_url=d.url, timeout=httpx.Timeout(300.0, connect=10.0)) as cc:
                n = 0
                while not done.is_set():
                    chat(cc, n, day[0], chats)
                    n += 1
                    done.wait(chat_every)

        chat_thread = threading.Thread(target=chatter, name="soak-chat")
        for minute in range(minutes + 1):
            if minute:
                done.wait(max(0.0, started + minute * 60 - time.monotonic()))
                u = daemon_usage(pid)
                samples.append(Sample(round((time.monotonic() - started) / 60, 2), u["pss"] / 2**20,
                                      u["uss"] / 2**20, u["rss"] / 2**20, u["fds"]))
                top = ", ".join(f"{k} {v:.0f}" for k, v in list(pss_by_mapping(pid).items())[:5])
                print(f"[day {minute:3d}] PSS {samples[-1].pss_mib:.1f} MiB ({top}), fds {u['fds']}, "
                      f"chats {chats.codes}", flush=True)
            if time.monotonic() >= end:
                break
            day[0] += 1
            c.post("/api/feeds/refresh").raise_for_status()
            c.post("/api/memories", json={"text": f"Day {day[0]}: watered the tomatoes and fixed gate {day[0]}."}
                   ).raise_for_status()
            if not minute:
                chat_thread.start()
        done.set()
        chat_thread.join()
        wait_idle(d.url)
        u = daemon_usage(pid)
        samples.append(Sample(round((time.monotonic() - started) / 60, 2), u["pss"] / 2**20, u["uss"] / 2**20,
                              u["rss"] / 2**20, u["fds"]))
        breakdown["end"] = pss_by_mapping(pid)
        settled = None
        if settle > 0:  # the schedules go on; the saved prompt states unused for idle_s are dropped
            c.post(f"/api/schedules/{schedules[2]['id']}/pause")
            time.sleep(settle)
            u = daemon_usage(pid)
            settled = {"pss_mib": u["pss"] / 2**20, "uss_mib": u["uss"] / 2**20, "rss_mib": u["rss"] / 2**20,
                       "fds": u["fds"]}
            breakdown["settled"] = pss_by_mapping(pid)
        runs = {s["skill"] + "/" + s["timezone"]: len(c.get(f"/api/schedules/{s['id']}/runs",
                                                            params={"limit": 500}).json()["data"]) for s in schedules}
        counts = {
            "memories": c.get("/api/memories", params={"limit": 1}).json()["total"],
            "conversations": len(c.get("/api/conversations", params={"limit": 500}).json()["data"]),
            "feed entries": sum(f["entry_count"] for f in c.get("/api/feeds").json()["data"]),
            "notifications": c.get("/api/notifications", params={"limit": 1}).json()["total"],
        }
        log = d.log()
    return {
        "minutes": minutes,
        "prompt_cache_mb": cache_mb,
        "prompt_cache_idle_s": idle_s,
        "settle_s": settle,
        "settled": settled,
        "pss_by_mapping": breakdown,
        "samples": [asdict(s) for s in samples],
        "chats": asdict(chats) | {"p50_s": statistics.median(chats.seconds) if chats.seconds else None},
        "schedule_runs": runs,
        "counts": counts,
        "sizes": sizes(data_dir),
        "tracebacks": log.count("Traceback"),
        "state_drops": log.count("saved prompt state(s) unused"),  # the worker's idle releases that dropped some
    }


def report(result: dict[str, Any]) -> str:
    samples = [Sample(**s) for s in result["samples"]]
    first, last = samples[0], samples[-1]
    lines = [f"soak: {result['minutes']:g} simulated days (one a minute), prompt cache "
             f"{result.get('prompt_cache_mb', 256)} MB", "",
             "| | start (after the warm-up) | end | min - max over the run | slope |",
             "|---|---|---|---|---|"]
    for attr, unit in (("pss_mib", "MiB"), ("uss_mib", "MiB"), ("rss_mib", "MiB"), ("fds", "")):
        vals = [getattr(s, attr) for s in samples]
        lines.append(f"| {attr.replace('_mib', '').upper()} | {getattr(first, attr):.1f} {unit} | "
                     f"{getattr(last, attr):.1f} {unit} | {min(vals):.1f} - {max(vals):.1f} | "
                     f"{slope_per_hour(samples, attr):+.1f} {unit}/h |")
    change = (last.pss_mib - first.pss_mib) / first.pss_mib * 100
    lines += ["", f"PSS end vs start: {change:+.1f} %"]
    if result.get("settled"):
        st = result["settled"]
        lines.append(f"after {result['settle_s']:g} s more (prompt_cache_idle_s = {result['prompt_cache_idle_s']:g}): "
                     f"PSS {st['pss_mib']:.1f} MiB ({(st['pss_mib'] - first.pss_mib) / first.pss_mib * 100:+.1f} % "
                     f"vs start), USS {st['uss_mib']:.1f} MiB, fds {st['fds']}")
    by_map = result.get("pss_by_mapping") or {}
    if by_map:
        cols = list(by_map)
        lines += ["", "| PSS by mapping, MiB | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for kind in sorted(set().union(*by_map.values()), key=lambda k: -max(m.get(k, 0.0) for m in by_map.values())):
            if max(m.get(kind, 0.0) for m in by_map.values()) >= 1.0:
                lines.append(f"| {kind} | " + " | ".join(f"{by_map[c].get(kind, 0.0):.1f}" for c in cols) + " |")
    lines += ["", "| database | bytes |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in result["sizes"].items()]
    chats = result["chats"]
    lines += ["", f"chats: {chats['codes']} (p50 answered {chats['p50_s'] or 0:.2f} s); "
              f"schedule runs: {result['schedule_runs']}; {result['counts']}; "
              f"tracebacks in the daemon log: {result['tracebacks']}; idle releases that dropped saved prompt "
              f"states: {result.get('state_drops', 'n/a')}"]
    lines += [f"FAILED chat: {f}" for f in chats["failures"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=int, default=30, help="run length; each minute is a simulated day")
    p.add_argument("--chat-every", type=float, default=4.0, help="seconds between chats")
    p.add_argument("--prompt-cache-mb", type=int, default=256, help="model.prompt_cache_mb (256 as shipped)")
    p.add_argument("--prompt-cache-idle-s", type=float, default=600,
                   help="model.prompt_cache_idle_s (600 as shipped; a simulated day is a minute here)")
    p.add_argument("--settle", type=float, default=0, metavar="S",
                   help="after the run, wait S seconds more and measure again (to see the states dropped, more "
                        "than the idle limit plus the worker's tick, min(60, idle / 2): 150 for an idle of 60)")
    p.add_argument("--data-dir", type=Path, help="keep the data dir here (default: a temporary one)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = run(args.minutes, args.chat_every, args.data_dir or Path(tmp) / "data", args.prompt_cache_mb,
                     args.prompt_cache_idle_s, args.settle)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if result["chats"]["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
