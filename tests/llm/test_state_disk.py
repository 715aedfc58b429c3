"""Prompt states on disk (assistant.llm.state_disk): verified before use, written atomically, bounded.

No model here: the payload is opaque bytes. The real round trip through llama.cpp after a restart is in
test_prompt_state_restart.py (slow).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from assistant.llm.state_disk import MAGIC, DiskStates, StateKey, model_identity

TOKENS = tuple(range(100, 160))


def key(**changes: object) -> StateKey:
    fields: dict[str, object] = {
        "model": "size=1;mtime_ns=2;ends=ab",
        "runtime": "llama-cpp-python=0.3.36",
        "context": "n_ctx=4096;n_batch=512;flash_attn=False",
        "template": "t" * 64,
        "tokens": TOKENS,
    }
    fields.update(changes)
    return StateKey(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> DiskStates:
    return DiskStates(tmp_path / "prompt-states", max_bytes=1 << 20)


def test_a_saved_state_loads_back_with_its_tokens(store: DiskStates) -> None:
    data = bytes(range(256)) * 40
    path = store.save(key(), data)
    assert path.name.endswith(".state") and path.read_bytes().startswith(MAGIC)
    loaded = store.load(key())
    assert loaded is not None
    assert loaded.data == data and loaded.tokens == TOKENS
    assert not list(store.dir.glob("*.tmp"))  # the temporary file was renamed, not left behind


@pytest.mark.parametrize(
    "change",
    [
        {"model": "size=1;mtime_ns=3;ends=ab"},  # the model file changed
        {"runtime": "llama-cpp-python=0.3.37"},  # llama.cpp changed
        {"context": "n_ctx=2048;n_batch=512;flash_attn=False"},
        {"template": "u" * 64},  # the chat template changed
        {"tokens": (*TOKENS[:-1], 7)},  # the prompt changed
        {"tokens": TOKENS[:-1]},
    ],
)
def test_a_change_of_any_part_of_the_key_misses(store: DiskStates, change: dict[str, object]) -> None:
    store.save(key(), b"state")
    assert store.load(key(**change)) is None
    assert store.load(key()) is not None  # the old one is still there for its own key


def _corrupt(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "flip":
        raw[-3] ^= 0x01
    elif how == "torn":
        raw = raw[: len(raw) - 10]
    elif how == "header":
        raw[len(MAGIC) + 6] = ord("{")
    elif how == "empty":
        raw = bytearray()
    elif how == "magic":
        raw[0] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["flip", "torn", "header", "empty", "magic"])
def test_a_damaged_file_is_ignored_and_removed(
    store: DiskStates, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = store.save(key(), b"x" * 5000)
    _corrupt(path, how)
    with caplog.at_level(logging.WARNING):
        assert store.load(key()) is None
    assert not path.exists()  # rebuilt on the next save, never loaded
    assert "ignored" in caplog.text
    store.save(key(), b"y" * 5000)
    loaded = store.load(key())
    assert loaded is not None and loaded.data == b"y" * 5000


def test_a_state_under_another_keys_name_is_not_loaded(store: DiskStates) -> None:
    """A file renamed (or a hash collision): its header names another key."""
    other = store.save(key(context="other"), b"other state")
    other.rename(store.path_of(key()))
    assert store.load(key()) is None


def test_leftover_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    d = tmp_path / "prompt-states"
    d.mkdir()
    (d / "abc.state.1.2.tmp").write_bytes(b"half")
    DiskStates(d, 1 << 20)
    assert not list(d.glob("*.tmp"))


def test_the_directory_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    import os

    store = DiskStates(tmp_path / "s", max_bytes=25_000)
    paths = []
    for i in range(3):
        paths.append(store.save(key(tokens=(*TOKENS, i)), bytes(10_000)))
        os.utime(paths[-1], ns=(i * 10**9, i * 10**9))  # distinct ages
    # the third save pushed the total over 25,000 bytes: the oldest went
    assert not paths[0].exists() and paths[1].exists() and paths[2].exists()
    store.load(key(tokens=(*TOKENS, 1)))  # used now: the newest
    store.save(key(tokens=(*TOKENS, 3)), bytes(10_000))
    assert paths[1].exists() and not paths[2].exists()
    assert store.total_bytes() <= 25_000


def test_background_saves_finish_on_flush(store: DiskStates) -> None:
    store.save_in_background(key(), b"state")
    store.flush()
    assert store.load(key()) is not None


def test_model_identity_follows_the_file(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + bytes(3 << 20))
    first = model_identity(f)
    assert model_identity(f) == first
    with f.open("r+b") as fh:  # the tail changes, the size does not
        fh.seek(-10, 2)
        fh.write(b"0123456789")
    os_stat = f.stat()
    import os

    os.utime(f, ns=(os_stat.st_atime_ns, os_stat.st_mtime_ns))
    assert model_identity(f) != first
    pinned = model_identity(f, "abc", f.stat().st_size)
    assert pinned.endswith("sha256=abc")
    assert "sha256" not in model_identity(f, "abc", 12)  # another size: not the pinned file
