"""A damaged Chroma directory, memory record file or job store is found at start and reported once, with
what to do, as StoreCorrupt (which `assistant serve` turns into exit code 65 and systemd does not restart).

Real Chroma dirs and SQLite files in tmp, damaged the ways disks damage them: truncated, garbage written
over the start of a file, garbage in the HNSW segment files (which Chroma answers with wrong neighbours
rather than an error). After the documented fix (move the Chroma dir aside) every memory is found again,
rebuilt from keyword.sqlite3.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.core.storage_errors import EXIT_STORE_CORRUPT, StoreCorrupt, startup_problem
from assistant.services import Services
from assistant.skillkit.scheduler import SkillScheduler
from memory.service import NewMemory
from tests.fakes import FixedClock
from tests.memory_fakes import fake_memory

ROOT = Path(__file__).resolve().parents[2]
N_PERSISTED = 1200  # above Chroma's sync threshold (1000): the HNSW segment files are written to disk


def _memories(directory: Path, n: int) -> dict[str, str]:
    m = fake_memory(directory, FixedClock())
    vocabulary = [f"w{j}x" for j in range(300)]  # distinct bags of words: a healthy HNSW graph
    texts = [f"memory {i}: " + " ".join(random.Random(i).sample(vocabulary, 8)) for i in range(n)]
    ids = m.add_many([NewMemory(t) for t in texts])
    m.close()
    _new_process()
    return dict(zip(ids, texts, strict=True))


def _new_process() -> None:
    """Forget the Chroma clients this process holds (each path's is cached), as a restarted daemon would."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _garble(path: Path, at: int = 0, size: int | None = None) -> None:
    rng = random.Random(7)
    length = os.path.getsize(path) - at if size is None else size
    with path.open("r+b") as f:
        f.seek(at)
        f.write(bytes(rng.randrange(256) for _ in range(length)))


def _truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(os.path.getsize(path) // 3)


def _assert_rebuilt(directory: Path, memories: dict[str, str]) -> None:
    """The documented fix: move the Chroma dir aside and start; every memory is found by its own text."""
    chroma = directory / "chroma"
    chroma.rename(directory / "chroma.broken")
    _new_process()
    m = fake_memory(directory, FixedClock())
    try:
        assert m.vectors.count() == len(memories) and m.vectors.memory_ids() == set(memories)
        for memory_id, text in list(memories.items())[:: max(1, len(memories) // 25)]:
            assert memory_id in [h.record.id for h in m.search(text, k=5, mode="dense", dedupe=False)]
    finally:
        m.close()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_chroma_database_is_reported_with_how_to_rebuild(tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "mem"
    memories = _memories(directory, 40)
    db = directory / "chroma" / "chroma.sqlite3"
    _truncate(db) if damage == "truncate" else _garble(db, 0, 4096)
    with pytest.raises(StoreCorrupt) as caught:
        fake_memory(directory, FixedClock())
    message = caught.value.message
    assert str(directory / "chroma") in message and "mv " in message and "keyword.sqlite3" in message
    assert caught.value.exit_code == EXIT_STORE_CORRUPT
    _assert_rebuilt(directory, memories)


CHILD = """
import sys
from pathlib import Path
from assistant.core.storage_errors import StoreCorrupt
from tests.fakes import FixedClock
from tests.memory_fakes import fake_memory
try:
    fake_memory(Path(sys.argv[1]), FixedClock()).close()
except StoreCorrupt as exc:
    print(exc.message)
    sys.exit(exc.exit_code)
print("opened")
"""


def _start(directory: Path) -> subprocess.CompletedProcess[str]:
    """Open the memory in a new process, as a daemon start does (a damaged index may crash the process)."""
    return subprocess.run([sys.executable, "-c", CHILD, str(directory)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)  # fmt: skip


@pytest.mark.parametrize("damage", ["all", "headers"])
def test_garbage_in_the_hnsw_segment_files_stops_the_start_loop(tmp_path: Path, damage: str) -> None:
    """Noise over the whole vector file crashes Chroma's native code (SIGSEGV) on the first query; noise over
    the start of each file makes it answer with wrong neighbours. Either way, within three starts the
    daemon says what to do and exits with EXIT_STORE_CORRUPT, instead of being restarted forever."""
    directory = tmp_path / "mem"
    memories = _memories(directory, N_PERSISTED)
    for path in (directory / "chroma").rglob("*.bin"):
        if damage == "all" and path.name == "data_level0.bin":
            _garble(path)
        elif damage == "headers":
            _garble(path, 0, min(256, os.path.getsize(path)))
    outcomes = []
    for _ in range(3):
        run = _start(directory)
        outcomes.append(run.returncode)
        if run.returncode == EXIT_STORE_CORRUPT:
            break
        assert run.returncode < 0, run.stdout + run.stderr  # killed by a signal, or reported: nothing else
    assert outcomes[-1] == EXIT_STORE_CORRUPT, outcomes
    assert f"mv {directory / 'chroma'}" in run.stdout
    _assert_rebuilt(directory, memories)
    assert _start(directory).stdout.strip() == "opened"


def test_sound_store_passes_the_check(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    _memories(directory, 30)
    fake_memory(directory, FixedClock()).close()  # no error


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_memory_records_are_reported_with_restore_instructions(tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "mem"
    _memories(directory, 300)
    db = directory / "keyword.sqlite3"
    _truncate(db) if damage == "truncate" else _garble(db, 0, 4096)
    with pytest.raises(StoreCorrupt) as caught:
        fake_memory(directory, FixedClock())
    assert str(db) in caught.value.message and "assistant restore" in caught.value.message


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_job_store_is_reported_with_what_to_do(services: Services, tmp_path: Path, damage: str) -> None:
    path = tmp_path / "schedules.sqlite3"
    sched = SkillScheduler(services.skills, path, timezone="UTC")
    for hour in range(24):
        sched.add("time", f"every day at {hour}:00", args={"phrase": False})
    sched.shutdown()
    _truncate(path) if damage == "truncate" else _garble(path, 0, 4096)
    with pytest.raises(StoreCorrupt) as caught:
        SkillScheduler(services.skills, path, timezone="UTC")
    message = caught.value.message
    assert str(path) in message and "assistant restore" in message and f"mv {path} {path}.broken" in message
    path.rename(path.with_suffix(".broken"))  # the documented way out: start with no schedules
    fresh = SkillScheduler(services.skills, path, timezone="UTC")
    assert fresh.list() == []
    fresh.shutdown()


def test_startup_problem_names_the_exit_code_for_sqlite_damage_anywhere() -> None:
    import sqlite3

    problem = startup_problem(sqlite3.DatabaseError("file is not a database"))
    assert isinstance(problem, StoreCorrupt) and problem.exit_code == EXIT_STORE_CORRUPT
    assert "assistant restore" in problem.message
    assert startup_problem(ValueError("unrelated")) is None


def test_two_starts_that_died_inside_the_index_reads_make_the_third_say_what_to_do(tmp_path: Path) -> None:
    directory = tmp_path / "mem"
    _memories(directory, 20)
    marker = directory / ".vector-check"
    marker.write_text("1")  # one start died there: could be bad luck (a kill -9), so check again
    fake_memory(directory, FixedClock()).close()
    assert not marker.exists()
    marker.write_text("2")
    with pytest.raises(StoreCorrupt, match="the last 2 starts died while reading the vector index"):
        fake_memory(directory, FixedClock())
    assert not marker.exists()  # after the fix, the next start checks again


def test_systemd_does_not_restart_a_daemon_that_found_a_damaged_store() -> None:
    unit = (ROOT / "deploy" / "assistant.service").read_text()
    assert f"RestartPreventExitStatus={EXIT_STORE_CORRUPT}" in unit.splitlines()


def test_the_daemon_exits_65_with_one_message_on_a_damaged_job_store(tmp_path: Path) -> None:
    """The real `assistant serve`: no crash loop, no traceback; the message names the file and the way out."""
    from tests.daemon import free_port

    data = tmp_path / "data"
    data.mkdir()
    path = data / "schedules.sqlite3"
    path.write_bytes(b"SQLite format 3\0" + bytes(random.Random(3).randrange(256) for _ in range(8192)))
    config = data / "config.toml"
    config.write_text(
        f'[model]\nbackend = "openai"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\nremote_model = "none"\n'
        "[memory]\nenabled = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_DATA_DIR"] = str(data)
    run = subprocess.run(
        [sys.executable, "-m", "assistant", "--config", str(config), "serve", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == EXIT_STORE_CORRUPT, run.stdout + run.stderr
    assert str(path) in run.stderr and "assistant restore" in run.stderr and "Traceback" not in run.stderr


def test_a_damaged_conversation_store_is_named_in_the_message(tmp_path: Path) -> None:
    from assistant.config import load_settings
    from assistant.services import build_services
    from tests.fakes import FakeLLM

    data = tmp_path / "data"
    data.mkdir()
    path = data / "conversations.sqlite3"
    path.write_bytes(bytes(random.Random(5).randrange(256) for _ in range(8192)))
    settings = load_settings(None, data_dir=data, memory={"enabled": False}, scheduler={"enabled": False})
    with pytest.raises(StoreCorrupt) as caught:
        build_services(settings, clock=FixedClock(), llm=FakeLLM())
    assert str(path) in caught.value.message and "assistant restore" in caught.value.message
