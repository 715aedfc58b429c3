"""Nothing acknowledged is lost: kill -9 the real daemon right after adds/deletes, restart, check both indexes.

The daemon is the real `assistant serve` (real Chroma dir, real embedder, FTS5) with the remote model backend
pointed at a closed loopback port, so no language model is loaded: this test is about memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.daemon import free_port, start_daemon

pytestmark = pytest.mark.slow


def _config() -> str:
    return (
        "[model]\n"
        'backend = "openai"\n'
        f'base_url = "http://127.0.0.1:{free_port()}/v1"\n'
        'remote_model = "none"\n'
    )


def _search(url: str, q: str, mode: str) -> list[str]:
    r = httpx.get(url + "/api/memories/search", params={"q": q, "k": 3, "mode": mode, "recency": "false"}, timeout=60)
    r.raise_for_status()
    return [h["id"] for h in r.json()["data"]]


def test_acknowledged_memories_survive_kill_9_in_both_indexes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = _config()
    facts = [f"Fact {i}: the locker code for box zq{i}x is {1000 + i}." for i in range(12)]
    ids: list[str] = []
    with start_daemon(data, config_toml=config) as d:
        with httpx.Client(base_url=d.url, timeout=60) as c:
            for text in facts[:8]:
                r = c.post("/api/memories", json={"text": text})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            r = c.post("/api/memories/batch", json={"memories": [{"text": t} for t in facts[8:]]})
            assert r.status_code == 201
            ids += r.json()["ids"]
            assert c.delete(f"/api/memories/{ids[0]}").status_code == 200
        d.kill9()  # straight after the last acknowledgement
    with start_daemon(data, config_toml=config) as d:
        listed = httpx.get(d.url + "/api/memories", params={"limit": 100}).json()
        assert listed["total"] == 11
        assert {m["id"] for m in listed["data"]} == set(ids[1:])
        for memory_id, text in zip(ids, facts, strict=True):
            token = text.split()[7]  # the unique "zq<i>x"
            keyword = _search(d.url, token, "keyword")
            dense = _search(d.url, text, "dense")
            if memory_id == ids[0]:
                assert memory_id not in keyword and memory_id not in dense
            else:
                assert keyword[:1] == [memory_id], text
                assert dense[:1] == [memory_id], text
        _cli_round_trip(d.url, d.port, tmp_path)
        log = d.log()
    assert "Traceback" not in log


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    return subprocess.run([sys.executable, "-m", "assistant", "--config", str(cfg), "memory", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def _cli_round_trip(url: str, port: int, tmp_path: Path) -> None:
    """`assistant memory add|search|forget|import` against the restarted daemon (same process, saves a start)."""
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f"[server]\nport = {port}\n")
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "garden.md").write_text("# Garden\n\n## Roses\n\nPrune the roses in February.\n")
    (notes / "sub" / "bikes.txt").write_text("The bike lock combination is 4711.\n")
    (notes / "photo.jpg").write_bytes(b"\xff\xd8\xff not a note")
    run = _cli(cfg, "import", str(notes))
    assert run.returncode == 0, run.stderr
    assert "imported 2 notes from 2 files" in run.stdout
    run = _cli(cfg, "add", "The", "passport", "expires", "in", "2031")
    assert run.returncode == 0, run.stderr
    new_id = run.stdout.strip()
    run = _cli(cfg, "search", "when", "do", "I", "prune", "roses", "--json")
    assert run.returncode == 0, run.stderr
    top = json.loads(run.stdout)["data"][0]
    assert top["text"] == "Garden > Roses\nPrune the roses in February." and top["metadata"]["file"] == "garden.md"
    assert _cli(cfg, "forget", new_id).returncode == 0
    assert httpx.get(f"{url}/api/memories/{new_id}").status_code == 404
    run = _cli(cfg, "forget", new_id)
    assert run.returncode == 1 and "no memory" in run.stderr
    run = _cli(cfg, "add", "")
    assert run.returncode == 2 and "empty" in run.stderr
