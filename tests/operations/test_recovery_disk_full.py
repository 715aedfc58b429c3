"""A full disk or a read-only data dir: the API answers 507 / 503 saying so, and nothing is corrupted.

The real test puts the data dir on a tmpfs of a few megabytes (needs root to mount; skipped otherwise,
where the fault-injection test below still runs): memories and schedules are written until the disk
refuses, the refusals are checked, then the space comes back and every acknowledged write is there, the
SQLite files pass ``integrity_check`` and new writes work. The same dir remounted read-only refuses writes
with 503 and still answers reads.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import load_settings
from assistant.core.storage_errors import EXIT_STORAGE, StorageFull, StorageReadOnly, storage_error
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder


def _services(data: Path, clock: FixedClock) -> Services:
    settings = load_settings(
        None, data_dir=data, memory={"enabled": True}, scheduler={"enabled": True}, notify={"enabled": False}
    )
    return build_services(settings, clock=clock, llm=FakeLLM(), embedder=HashingEmbedder())


def test_storage_error_recognises_each_library_s_way_of_saying_it() -> None:
    import errno

    import sqlalchemy.exc

    full = sqlite3.OperationalError("database or disk is full")
    assert isinstance(storage_error(full), StorageFull)
    assert isinstance(storage_error(OSError(errno.ENOSPC, "No space left on device")), StorageFull)
    wrapped = sqlalchemy.exc.OperationalError("INSERT INTO schedules ...", {}, full)
    assert isinstance(storage_error(wrapped), StorageFull)
    chroma_style = RuntimeError("Database error: error returned from database: (code: 13) database or disk is full")
    assert isinstance(storage_error(chroma_style), StorageFull)
    assert isinstance(storage_error(sqlite3.OperationalError("attempt to write a readonly database")), StorageReadOnly)
    assert isinstance(storage_error(OSError(errno.EROFS, "Read-only file system")), StorageReadOnly)
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise ValueError("writing the index failed") from inner
    except ValueError as outer:
        assert isinstance(storage_error(outer), StorageFull)  # found among the causes
    assert storage_error(ValueError("bad input")) is None
    assert storage_error(sqlite3.OperationalError("no such table: x")) is None


def test_a_refused_write_answers_507_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection (runs everywhere): the keyword index's insert fails as SQLite does on a full disk."""
    services = _services(tmp_path / "data", FixedClock())
    assert services.memory is not None
    with TestClient(create_app(services)) as c:
        ok = c.post("/api/memories", json={"text": "saved before the disk filled"})
        assert ok.status_code == 201

        def full(*_: object, **__: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(services.memory.keyword, "insert", full)
        r = c.post("/api/memories", json={"text": "this one does not fit"})
        assert r.status_code == 507, r.text
        err = r.json()["error"]
        assert err["code"] == "storage_full" and "full" in err["message"] and "Free some space" in err["message"]
        monkeypatch.undo()
        assert [m["text"] for m in c.get("/api/memories").json()["data"]] == ["saved before the disk filled"]


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@contextmanager
def small_disk(path: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (root only: skips the test otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the fault-injection test covers the API mapping")
    path.mkdir(parents=True)
    try:
        _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _fill(disk: Path) -> Path:
    """Fill the disk to the last byte with one file; deleting it gives the space back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        for block in (1 << 20, 65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def test_full_disk_then_space_again_loses_and_corrupts_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        data = disk / "data"
        services = _services(data, FixedClock())
        acknowledged: dict[str, str] = {}
        schedules: list[str] = []
        with TestClient(create_app(services)) as c:
            for i in range(5):
                text = (f"memory {i} written while there was room " + "words " * 50).strip()
                r = c.post("/api/memories", json={"text": text})
                assert r.status_code == 201, r.text
                acknowledged[r.json()["id"]] = text
            r = c.post("/api/schedules", json={"skill": "time", "schedule": "every day at 7:00"})
            assert r.status_code == 201, r.text
            schedules.append(r.json()["id"])

            filler = _fill(disk)
            refused = {"memory": 0, "schedule": 0}
            for i in range(30):
                text = (f"memory {i} written on a full disk " + "words " * 200).strip()
                r = c.post("/api/memories", json={"text": text})
                if r.status_code == 201:  # SQLite found room in a free page: acknowledged, so it must stay
                    acknowledged[r.json()["id"]] = text
                    continue
                assert r.status_code == 507, r.text
                assert r.json()["error"]["code"] == "storage_full"
                refused["memory"] += 1
            for _ in range(5):
                r = c.post("/api/schedules", json={"skill": "time", "schedule": "every day at 8:00"})
                if r.status_code == 201:
                    schedules.append(r.json()["id"])
                    continue
                assert r.status_code == 507, r.text
                refused["schedule"] += 1
            assert refused["memory"] > 0 and refused["schedule"] > 0, refused
            assert c.get("/api/memories").status_code == 200  # reads still work

            filler.unlink()
            r = c.post("/api/memories", json={"text": "written after space came back"})
            assert r.status_code == 201, r.text
            acknowledged[r.json()["id"]] = "written after space came back"

        # A restart on the same dir: every acknowledged write is there, nothing is damaged.
        services = _services(data, FixedClock())
        with TestClient(create_app(services)) as c:
            listed = c.get("/api/memories", params={"limit": 200}).json()
            assert {m["id"]: m["text"] for m in listed["data"]} == acknowledged
            assert {s["id"] for s in c.get("/api/schedules").json()["data"]} == set(schedules)
            for memory_id, text in acknowledged.items():
                hits = c.get("/api/memories/search", params={"q": text, "k": 1, "mode": "dense"}).json()["data"]
                assert hits and hits[0]["id"] == memory_id
        for db in ("memory/keyword.sqlite3", "memory/chroma/chroma.sqlite3", "schedules.sqlite3",
                   "conversations.sqlite3"):  # fmt: skip
            assert _integrity(data / db) == "ok", db


def test_read_only_data_dir_at_start_is_one_clear_error(tmp_path: Path) -> None:
    """A disk remounted read-only (an SD card after an error) found at start by the real daemon: one
    message saying so and exit code 73, and the stores on it are intact."""
    import httpx

    from tests.daemon import free_port, start_daemon

    config = f'[model]\nbackend = "openai"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\nremote_model = "none"\n'
    with small_disk(tmp_path / "disk", "64m") as disk:
        data = disk / "data"
        with start_daemon(data, config_toml=config) as d:
            assert httpx.post(d.url + "/api/memories", json={"text": "written before"}).status_code == 201
            r = httpx.post(d.url + "/api/schedules", json={"skill": "time", "schedule": "daily at 8"})
            assert r.status_code == 201, r.text
        _run("mount", "-o", "remount,ro", str(disk))
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
            env.update({"ASSISTANT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"})
            run = subprocess.run(
                [sys.executable, "-m", "assistant", "--config", str(data / "config.toml"), "serve",
                 "--port", str(free_port())],
                capture_output=True, text=True, env=env, timeout=300,
            )  # fmt: skip
        finally:
            _run("mount", "-o", "remount,rw", str(disk))
        assert run.returncode == EXIT_STORAGE, run.stdout + run.stderr
        assert "read-only" in run.stderr and "Traceback" not in run.stderr
        for db in ("memory/keyword.sqlite3", "memory/chroma/chroma.sqlite3", "schedules.sqlite3"):
            assert _integrity(data / db) == "ok", db


def test_a_write_the_read_only_disk_refuses_answers_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection (a running daemon's disk cannot be remounted read-only under its open files here)."""
    services = _services(tmp_path / "data", FixedClock())
    assert services.memory is not None
    with TestClient(create_app(services)) as c:

        def read_only(*_: object, **__: object) -> None:
            raise sqlite3.OperationalError("attempt to write a readonly database")

        monkeypatch.setattr(services.memory.keyword, "insert", read_only)
        r = c.post("/api/memories", json={"text": "not saved"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "storage_read_only" and "read-only" in r.json()["error"]["message"]
        assert c.get("/api/memories").status_code == 200


def test_an_add_refused_by_chroma_after_its_record_is_taken_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record commits first; when Chroma then refuses (full disk), the record is taken back: a 507 means
    "not saved", and no memory the client was told failed turns up later."""
    services = _services(tmp_path / "data", FixedClock())
    memory = services.memory
    assert memory is not None
    with TestClient(create_app(services)) as c:
        assert c.post("/api/memories", json={"text": "kept"}).status_code == 201

        def full(*_: object, **__: object) -> None:
            raise RuntimeError("Database error: error returned from database: (code: 13) database or disk is full")

        monkeypatch.setattr(memory.vectors, "upsert", full)
        r = c.post("/api/memories", json={"text": "refused by chroma"})
        assert r.status_code == 507, r.text
        monkeypatch.undo()
        assert [m["text"] for m in c.get("/api/memories").json()["data"]] == ["kept"]
        assert memory.keyword.pending_deletes() == [] and memory.keyword.not_embedded() == []
        assert memory.vectors.count() == 1
