"""`assistant backup` / `assistant restore`: a backup taken while another thread keeps writing memories,
conversation turns and schedules restores to services whose stores hold exactly the state of some moment
of the writer's history (per store: each SQLite file is a consistent snapshot); a backup taken at rest
restores to services equal to the source. Memories come back with their vectors (dense search finds
them; nothing but memories caught mid-write is embedded again). Restore refuses a data dir in use, a
non-empty one without --force, and a damaged archive."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.cli import main
from assistant.cli.backup import BackupError, create_backup, restore_backup
from assistant.config import Settings, load_settings
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder

WORDS = "boiler garden invoice dentist passport bicycle harbour violin lantern meadow".split()


def open_services(data_dir: Path, clock: FixedClock) -> Services:
    """The daemon's services on ``data_dir`` with the fake model and memory on (fake embedder)."""
    settings = load_settings(None, data_dir=data_dir, memory={"enabled": True}, notify={"enabled": False})
    return build_services(settings, clock=clock, llm=FakeLLM(), embedder=HashingEmbedder())


def state(services: Services) -> dict[str, Any]:
    assert services.memory is not None and services.scheduler is not None
    records, _ = services.memory.list(limit=100_000)
    conv = services.conversations
    return {
        "memories": {r.id: (r.text, r.source, r.created_at, r.metadata) for r in records},
        "conversations": {
            c["id"]: [(t.role, t.content) for t in conv.turns(str(c["id"]))] for c in conv.list(limit=10_000)
        },
        "schedules": {
            s.id: (s.skill, s.schedule, s.timezone, s.next_run_time, s.paused)
            for s in services.scheduler.list()
        },
    }


def assert_vectors_are_the_texts(services: Services) -> None:
    """Every memory's chunk vectors in the restored Chroma are the embeddings of its own chunks."""
    memory = services.memory
    assert memory is not None
    records, _ = memory.list(limit=100_000)
    got = memory.vectors.collection.get(include=["embeddings"], limit=100_000)
    stored = {cid: [float(x) for x in v] for cid, v in zip(got["ids"], got["embeddings"], strict=True)}
    expected = {}
    for r in records:
        for n, vec in enumerate(HashingEmbedder().embed(memory._chunks(r.text))):
            expected[f"{r.id}#{n}"] = vec
    assert stored.keys() == expected.keys()
    for cid, vec in expected.items():
        assert stored[cid] == pytest.approx(vec, abs=1e-6), cid


class Writer(threading.Thread):
    """Adds and deletes memories, appends turns, adds and removes schedules until stopped; keeps the state
    of each store after each acknowledged write."""

    def __init__(self, services: Services) -> None:
        super().__init__(daemon=True)
        self.services = services
        self.stop = threading.Event()
        self.ops = 0
        self.error: BaseException | None = None
        self.history: dict[str, list[dict[str, Any]]] = {"memories": [{}], "conversations": [{}], "schedules": [{}]}

    def _push(self, store: str, new: dict[str, Any]) -> None:
        self.history[store].append(new)
        self.ops += 1

    def run(self) -> None:
        s = self.services
        assert s.memory is not None and s.scheduler is not None
        try:
            i = 0
            while not self.stop.is_set() and i < 5000:
                i += 1
                text = f"note {i}: the {WORDS[i % 10]} and the {WORDS[(i * 3) % 10]}"
                mid = s.memory.add(text, metadata={"n": i})
                rec = s.memory.get(mid)
                assert rec is not None
                mems = {**self.history["memories"][-1], mid: (rec.text, rec.source, rec.created_at, rec.metadata)}
                self._push("memories", mems)
                if i % 3 == 0:
                    victim = sorted(mems)[i % len(mems)]
                    assert s.memory.delete(victim)
                    self._push("memories", {k: v for k, v in mems.items() if k != victim})
                cid = f"conv-{i % 4}"
                s.conversations.append(cid, [("user", f"q{i}"), ("assistant", f"a{i}")], s.clock.now())
                convs = dict(self.history["conversations"][-1])
                convs[cid] = [*convs.get(cid, []), ("user", f"q{i}"), ("assistant", f"a{i}")]
                self._push("conversations", convs)
                if i % 5 == 0:
                    scheds = dict(self.history["schedules"][-1])
                    if i % 15 == 0 and scheds:
                        gone = sorted(scheds)[0]
                        s.scheduler.remove(gone)
                        scheds.pop(gone)
                    else:
                        d = s.scheduler.add("time", f"every {i % 50 + 1} minutes")
                        scheds[d.id] = (d.skill, d.schedule, d.timezone, d.next_run_time, d.paused)
                    self._push("schedules", scheds)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def member_bytes(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Services]:
    services = open_services(tmp_path / "source", FixedClock())
    yield services
    services.close()


def test_backup_while_writing_restores_a_moment_of_each_store(source: Services, tmp_path: Path) -> None:
    writer = Writer(source)
    writer.start()
    try:
        for round in range(3):
            target = writer.ops + 40
            deadline = time.monotonic() + 60
            while writer.ops < target and writer.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)  # letting the writer get on, not waiting for time to pass
            before = {k: len(v) for k, v in writer.history.items()}
            archive = tmp_path / f"live{round}.tar.gz"
            manifest = create_backup(source.settings.data_dir, archive, source.settings)
            after = {k: len(v) for k, v in writer.history.items()}
            assert writer.error is None, writer.error
            assert after["memories"] > before["memories"], "no write happened during the backup"
            _check_restore(archive, tmp_path / f"restored{round}", writer, before, after, manifest)
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    assert writer.error is None, writer.error


def _check_restore(
    archive: Path, target: Path, writer: Writer, before: dict[str, int], after: dict[str, int], manifest: dict[str, Any]
) -> None:
    restore_backup(archive, target)
    restored = open_services(target, FixedClock())
    try:
        got = state(restored)
        for store in ("memories", "conversations", "schedules"):
            # the snapshot is a state the store was in while the backup ran: not older, not torn
            moments = [k for k in range(before[store] - 1, after[store]) if writer.history[store][k] == got[store]]
            assert moments, f"restored {store} match no moment of the writer's history during the backup"
        mem = manifest["memory"]
        assert mem["memories"] == len(got["memories"]) and mem["reembed"] <= 2, mem
        assert restored.memory is not None
        assert restored.memory.vectors.count() == restored.memory.keyword.expected_chunks()
        assert_vectors_are_the_texts(restored)
    finally:
        restored.close()


def test_backup_at_rest_restores_equal_services_through_the_cli(source: Services, tmp_path: Path) -> None:
    assert source.memory is not None and source.scheduler is not None
    for i in range(30):
        source.memory.add(f"{WORDS[i % 10]} memory number {i} " + "word " * (i * 20), source="user")
        source.conversations.append(f"c{i % 3}", [("user", f"hello {i}"), ("assistant", "hi")], source.clock.now())
    source.scheduler.add("time", "every day at 8", timezone="Europe/Berlin")
    paused = source.scheduler.add("time", "every 15 minutes")
    source.scheduler.pause(paused.id)
    archive = tmp_path / "rest.tar.gz"
    assert main(["backup", str(archive), "--data-dir", str(source.settings.data_dir)]) == 0
    assert main(["restore", str(archive), "--data-dir", str(tmp_path / "copy")]) == 0
    restored = open_services(tmp_path / "copy", FixedClock())
    try:
        assert state(restored) == state(source)
        assert restored.memory is not None
        assert restored.memory.recover() == {"reembedded": 0, "deleted": 0, "orphans": 0}
        assert_vectors_are_the_texts(restored)
        assert (tmp_path / "copy").stat().st_mode & 0o777 == 0o700
    finally:
        restored.close()
    manifest = json.loads(member_bytes(archive, "manifest.json"))
    paths = {f["path"] for f in manifest["files"]}
    assert {"data/conversations.sqlite3", "data/schedules.sqlite3", "data/memory/keyword.sqlite3",
            "vectors.sqlite3"} <= paths
    assert not any("chroma" in p or p.endswith(("-wal", "-shm")) for p in paths)
    assert manifest["versions"]["sqlite"] and all(len(f["sha256"]) == 64 for f in manifest["files"])


def test_restore_refuses_a_data_dir_in_use_a_full_one_and_a_damaged_archive(
    source: Services, tmp_path: Path
) -> None:
    assert source.memory is not None
    source.memory.add("the spare key is under the blue pot")
    archive = tmp_path / "b.tar.gz"
    create_backup(source.settings.data_dir, archive)
    with pytest.raises(BackupError, match="in use by process"):
        restore_backup(archive, source.settings.data_dir, force=True)
    with pytest.raises(BackupError, match="outside the data dir"):
        create_backup(source.settings.data_dir, source.settings.data_dir / "b.tar.gz")

    full = tmp_path / "full"
    full.mkdir()
    (full / "conversations.sqlite3").write_bytes(b"old")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(archive, full)
    result = restore_backup(archive, full, force=True)
    assert result["memories"] == 1 and result["kept"]
    assert (Path(result["kept"]) / "conversations.sqlite3").read_bytes() == b"old"

    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for member in src.getmembers():
            data = member_bytes(archive, member.name)
            if member.name == "data/conversations.sqlite3":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="checksum"):
        restore_backup(damaged, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())
    assert not list(tmp_path.glob(".assistant-restore-*"))


def test_restore_refuses_the_data_dir_of_a_daemon_that_answers(tmp_path: Path, settings: Settings) -> None:
    from assistant.app import create_app
    from tests.server import serve_app

    (tmp_path / "empty").mkdir()
    archive = tmp_path / "e.tar.gz"
    create_backup(tmp_path / "empty", archive)
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM())
    with serve_app(create_app(services)) as url:
        port = int(url.rsplit(":", 1)[1])
        target = tmp_path / "elsewhere"  # a data dir the daemon does not hold open, but its configured one
        cfg = load_settings(None, data_dir=target, server={"port": port})
        with pytest.raises(BackupError, match="daemon .* is running"):
            restore_backup(archive, target, cfg)
