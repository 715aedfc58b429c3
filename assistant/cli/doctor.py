"""`assistant doctor [--json] [--strict]`: what the daemon would use here, and what will not fit.

Reads the config, the model file's size (the model is not loaded), the data dir and its disk, the memory
count and schedules (from the running daemon when it answers, else from the SQLite files, read-only), the
notification channels, and the system packages voice and desktop notifications need. Memory is shown as
PSS and USS beside RSS (``psutil.Process.memory_full_info``): a memory-mapped model is counted whole in
the RSS of every process that maps it, so RSS overstates what the daemon costs. The figures are the
running daemon's (its pid comes from ``/healthz``) or, when none answers, the doctor's own.

Exit code: 1 when a check fails (it will not run or will not fit), else 0; ``--strict`` also fails on
warnings (a missing optional package).
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import pickle
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from assistant.config import Settings, load_settings, resolve_config_path
from assistant.core.errors import AssistantError

GB = 1024**3
MIN_FREE_BYTES = 1 * GB
MIN_FREE_SHARE = 0.05
SCHEDULES_DB = "schedules.sqlite3"  # assistant.skillkit.scheduler.DB_NAME (not imported: APScheduler)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what the daemon would use here and what will not fit")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    report = diagnose(settings, config_path=resolve_config_path(args.config))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        render(report)
    return exit_code(report, strict=args.strict)


def exit_code(report: dict[str, Any], *, strict: bool = False) -> int:
    bad = {"fail", "warn"} if strict else {"fail"}
    return 1 if any(c["status"] in bad for c in report["checks"]) else 0


# ---------------------------------------------------------------------------------------------- gathering


def diagnose(settings: Settings, *, config_path: Path | None = None) -> dict[str, Any]:
    """The whole report as plain data (what ``--json`` prints)."""
    import psutil

    checks: list[Check] = []
    health = daemon_health(settings)
    vm = psutil.virtual_memory()
    model = _model(settings, checks, vm.total)
    if model.get("bytes"):
        need = model["bytes"] + settings.model.prompt_cache_mb * 1024**2
        if model["bytes"] > vm.available:
            checks.append(Check("ram", "fail", f"the model ({_size(model['bytes'])}) is larger than the free "
                                f"RAM ({_size(vm.available)}): use a smaller model or free memory"))
        elif need > vm.available:
            checks.append(Check("ram", "warn", f"model plus prompt cache ({_size(need)}) exceed the free RAM "
                                f"({_size(vm.available)}): lower model.prompt_cache_mb"))
        else:
            checks.append(Check("ram", "ok", f"model {_size(model['bytes'])}, free RAM {_size(vm.available)}"))
    data = _data_dir(settings.data_dir, checks)
    _bind(settings, checks)
    _packages(settings, checks)
    daemon = _daemon_info(settings, health)
    return {
        "config": str(config_path) if config_path else None,
        "daemon": {"url": daemon["url"], "running": health is not None, "pid": daemon["pid"]},
        "model": model,
        "threads": settings.model.n_threads,
        "threads_why": threads_why(settings),
        "batch": settings.model.n_batch,
        "batch_why": batch_why(settings),
        "prompt_states": prompt_states(settings),
        "context": settings.model.n_ctx,
        "cpus": os.cpu_count(),
        "ram": {"total": vm.total, "available": vm.available},
        "data_dir": data,
        "memories": daemon["memories"] if daemon["memories"] is not None else _memory_count(settings),
        "schedules": daemon["schedules"] if daemon["schedules"] is not None else stored_schedules(settings),
        "channels": channels(settings),
        "process_memory": process_memory(daemon["pid"]),
        "checks": [asdict(c) for c in checks],
    }


def threads_why(settings: Settings) -> str:
    """Why llama.cpp gets ``model.n_threads`` threads: the config's word, or the machine's cores
    (assistant.core.threads)."""
    from assistant.core.threads import choose_threads

    if "n_threads" in settings.model.model_fields_set:
        return f"set by model.n_threads (the machine's choice would be {choose_threads().value})"
    return choose_threads().reason


def batch_why(settings: Settings) -> str:
    from assistant.core.threads import choose_batch

    if "n_batch" in settings.model.model_fields_set:
        return "set by model.n_batch"
    return choose_batch(settings.model.n_threads).reason


def prompt_states(settings: Settings) -> dict[str, Any]:
    """The system prompt states kept on disk (assistant.llm.state_disk): where, how many, how large."""
    path = settings.data_dir / "prompt-states"
    files = list(path.glob("*.state")) if path.is_dir() else []
    return {
        "path": str(path),
        "limit": settings.model.prompt_disk_mb << 20,
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
    }


def daemon_health(settings: Settings) -> dict[str, Any] | None:
    """The daemon's /healthz answer, or None when nothing answers at the configured address."""
    import httpx

    from assistant.client.daemon import daemon_base_url

    try:
        token = settings.server.api_token  # without it a protected daemon's /healthz says only "ok"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.get(daemon_base_url(settings) + "/healthz", headers=headers, timeout=2.0)
        answer = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def _daemon_info(settings: Settings, health: dict[str, Any] | None) -> dict[str, Any]:
    from assistant.client.daemon import DaemonClient, DaemonError, daemon_base_url

    info: dict[str, Any] = {"url": daemon_base_url(settings), "pid": None, "memories": None, "schedules": None}
    if health is None:
        return info
    info["pid"] = health.get("pid")
    with DaemonClient.from_settings(settings, timeout=10) as client:
        try:
            if settings.memory.enabled:
                info["memories"] = client.call("GET", "/api/memories", params={"limit": 1})["total"]
            if settings.scheduler.enabled:
                info["schedules"] = [
                    {"id": s["id"], "name": f"{s['skill']}: {s['schedule']}", "next_run": s["next_run_time"]}
                    for s in client.call("GET", "/api/schedules")["data"]
                ]
        except (DaemonError, KeyError, TypeError):
            pass  # e.g. a wrong token: read the files instead
    return info


def _model(settings: Settings, checks: list[Check], total_ram: int) -> dict[str, Any]:
    m = settings.model
    if m.backend == "openai":
        checks.append(Check("model", "ok", f"remote model at {m.base_url}"))
        return {"backend": "openai", "url": m.base_url, "path": None, "bytes": None}
    from assistant.llm.model_file import auto_choice, resolve_model_path

    bundled: dict[str, Any] | None = None
    why = ""
    if m.path is None:  # which bundled model, and why (one line, as `assistant models` says it)
        bundled = {"setting": m.bundled, "name": m.bundled, "reason": "named by model.bundled"}
        if m.bundled == "auto":
            try:
                choice = auto_choice(total_ram)
            except AssistantError as exc:
                checks.append(Check("model", "fail", exc.message))
                return {"backend": "llama", "path": None, "bytes": None, "bundled": bundled}
            bundled.update(name=choice.name, reason=choice.reason)
        why = f'; bundled {bundled["name"]} (model.bundled = "{m.bundled}": {bundled["reason"]})'
    try:
        path = resolve_model_path(settings, total_ram)  # the bundled model is put in place once, as at start
    except AssistantError as exc:
        checks.append(Check("model", "fail", exc.message))
        return {"backend": "llama", "path": str(m.path) if m.path else None, "bytes": None, "bundled": bundled}
    size = path.stat().st_size
    checks.append(Check("model", "ok", f"{path.name} ({_size(size)}){why}"))
    return {"backend": "llama", "path": str(path), "bytes": size, "mmap": m.use_mmap, "bundled": bundled}


def _data_dir(path: Path, checks: list[Check]) -> dict[str, Any]:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = shutil.disk_usage(existing)
    used = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0
    share = usage.free / usage.total if usage.total else 0.0
    if usage.free < MIN_FREE_BYTES or share < MIN_FREE_SHARE:
        checks.append(Check("disk", "fail", f"only {_size(usage.free)} ({share:.0%}) free on the disk of "
                            f"{path}: SQLite writes will fail when it is full"))
    else:
        checks.append(Check("disk", "ok", f"{_size(usage.free)} ({share:.0%}) free"))
    if not os.access(existing, os.W_OK):
        checks.append(Check("data dir", "fail", f"{existing} is not writable by this user"))
    return {"path": str(path), "exists": path.is_dir(), "bytes": used, "disk_free": usage.free,
            "disk_total": usage.total}


def _bind(settings: Settings, checks: list[Check]) -> None:
    s = settings.server
    if not s.is_loopback and not s.api_token:
        checks.append(Check("bind", "fail", f"server.host = {s.host} is reachable from the network but "
                            "server.api_token is not set (the daemon refuses to start)"))
    else:
        token = "with a token" if s.api_token else "loopback only"
        checks.append(Check("bind", "ok", f"{s.host}:{s.port} ({token})"))


def _packages(settings: Settings, checks: list[Check]) -> None:
    v = settings.voice
    if v.tts == "espeak-ng" and shutil.which("espeak-ng") is None:
        checks.append(Check("voice: espeak-ng", "warn", "not installed: `assistant voice` cannot speak "
                            "(apt-get install espeak-ng)"))
    if ctypes.util.find_library("portaudio") is None:
        checks.append(Check("voice: libportaudio2", "warn", "not installed: `assistant voice` has no "
                            "microphone or speaker (apt-get install libportaudio2)"))
    if settings.notify.enabled and settings.notify.desktop and shutil.which("notify-send") is None:
        checks.append(Check("notify-send", "warn", "not installed: no desktop popups (apt-get install "
                            "libnotify-bin, or set notify.desktop = false)"))


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)


def _memory_count(settings: Settings) -> int | str | None:
    if not settings.memory.enabled:
        return "off"
    path = settings.data_dir / "memory" / "keyword.sqlite3"
    if not path.exists():
        return 0
    try:
        with _ro(path) as db:
            return int(db.execute("SELECT COUNT(*) FROM memories").fetchone()[0])
    except sqlite3.Error:
        return None


def stored_schedules(settings: Settings) -> list[dict[str, Any]] | str:
    """The schedules in the job store with their next runs (None when paused), read without APScheduler
    running; "off" when the scheduler is turned off."""
    if not (settings.scheduler.enabled and settings.skills.enabled):
        return "off"
    path = settings.data_dir / SCHEDULES_DB
    if not path.exists():
        return []
    try:
        with _ro(path) as db:
            rows = db.execute("SELECT id, next_run_time, job_state FROM schedules ORDER BY next_run_time").fetchall()
    except sqlite3.Error:
        return []
    out = []
    for job_id, next_run, state in rows:
        try:
            name = str(pickle.loads(state).get("name", job_id))  # the daemon's own job store
        except Exception:  # noqa: BLE001 - an unreadable job still has an id and a time
            name = job_id
        when = datetime.fromtimestamp(next_run, UTC).isoformat() if next_run is not None else None
        out.append({"id": job_id, "name": name, "next_run": when})
    return out


def channels(settings: Settings) -> list[str]:
    n = settings.notify
    if not n.enabled:
        return []
    found = ["sse"]
    for name, url in (("webhook", n.webhook_url), ("ntfy", n.ntfy_url)):
        if url:
            found.append(f"{name} ({urlparse(url).hostname})")  # the host only: a topic URL is a secret
    if n.desktop:
        found.append("desktop" if shutil.which("notify-send") else "desktop (no notify-send)")
    return found


def process_memory(pid: int | None) -> dict[str, Any]:
    """RSS, PSS and USS of the daemon (``pid``) or, when it is unknown or not ours to read, of this process."""
    import psutil

    from assistant.core.procmem import memory_info

    who = "daemon"
    try:
        info = memory_info(pid) if pid else None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        info = None
    if info is None:
        who, pid = "doctor (no daemon answered)" if not pid else "doctor (daemon not readable)", os.getpid()
        info = memory_info(pid)
    return {"of": who, "pid": pid, **info}


# ---------------------------------------------------------------------------------------------- output


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    model, data, mem = report["model"], report["data_dir"], report["process_memory"]
    daemon = report["daemon"]
    uses = Table(title="What the daemon uses", show_header=False, title_justify="left")
    uses.add_column(style="bold")
    uses.add_column()
    uses.add_row("config", report["config"] or "(defaults and environment)")
    state = f"running, pid {daemon['pid']}" if daemon["running"] else "not running"
    uses.add_row("daemon", f"{daemon['url']} ({state})")
    where = model["path"] or model.get("url") or "?"
    uses.add_row("model", f"{where} ({_size(model['bytes'])})" if model["bytes"] else where)
    uses.add_row("threads / context", f"{report['threads']} of {report['cpus']} CPUs / {report['context']} tokens")
    uses.add_row("threads: why", report["threads_why"])
    uses.add_row("prompt batch", f"{report['batch']} tokens ({report['batch_why']})")
    states = report["prompt_states"]
    kept = "off"
    if states["limit"]:
        kept = f"{states['files']} file(s), {_size(states['bytes'])} of {_size(states['limit'])}"
    uses.add_row("prompt states", f"{states['path']} ({kept})")
    uses.add_row("RAM", f"{_size(report['ram']['available'])} free of {_size(report['ram']['total'])}")
    uses.add_row("data dir", f"{data['path']} ({_size(data['bytes'])}; disk {_size(data['disk_free'])} free "
                 f"of {_size(data['disk_total'])})")
    uses.add_row("memories", str(report["memories"]))
    schedules = report["schedules"]
    if isinstance(schedules, list):
        lines = [f"{s['name']} ({s['id']}): next {s['next_run'] or 'paused'}" for s in schedules]
        uses.add_row("schedules", "\n".join(lines) or "none")
    else:
        uses.add_row("schedules", str(schedules))
    uses.add_row("channels", ", ".join(report["channels"]) or "off")
    uses.add_row("process memory", f"PSS {_size(mem['pss'])}  USS {_size(mem['uss'])}  RSS {_size(mem['rss'])}  "
                 f"of the {mem['of']}, pid {mem['pid']}")
    console.print(uses)
    checks = Table(title="Checks", title_justify="left")
    checks.add_column("check")
    checks.add_column("")
    checks.add_column("detail")
    style = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
    for c in report["checks"]:
        checks.add_row(c["name"], style[c["status"]], c["detail"])
    console.print(checks)
