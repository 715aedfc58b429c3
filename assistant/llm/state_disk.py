"""Evaluated prompt prefixes kept on disk, so the first chat after a restart evaluates only what is new.

The system prompt (a persona's words after today's calendar: the same bytes all day) is the first few
hundred tokens of every chat; on a Raspberry Pi-class CPU they take seconds to evaluate. Their llama.cpp
state (the KV cache of those tokens and the last token's logits, ``llama_state_get_data``) is a few
megabytes: it is written here once and read back after a restart in milliseconds.

A state is only valid for the exact computation that made it, so its key holds everything that changes it:

- the model file (``model_identity``: size, mtime and a hash of its head and tail; the pinned sha256 of a
  bundled model whose name and size match, that file was verified in full when it was put in place),
- the runtime (llama-cpp-python's version and the size and mtime of the shared library it loads),
- the context settings that shape the state (n_ctx, n_batch, flash attention),
- the chat template text,
- the prompt's tokens themselves (the prompt text as this template and tokenizer make it).

The file name is a hash of the key; the file starts with a header that repeats the key and a sha256 of the
payload. ``load`` checks all of it: a file whose header, key, length or checksum does not match (a torn
write, a flipped bit, another model's state under a colliding name) is deleted and never loaded. Writes go
to a temporary file, fsynced, then renamed over the final name (and the directory fsynced), so a crash
leaves the old file or the new one, never half of one. The directory is bounded by ``max_bytes``: the
least recently used files go first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"ASSISTANT-PROMPT-STATE\x00v1\n"
SUFFIX = ".state"
_HEAD = 1 << 20  # bytes of the model file's head and tail hashed into its identity


@dataclass(frozen=True)
class StateKey:
    model: str  # model_identity()
    runtime: str  # runtime_identity()
    context: str  # the context settings that shape the state, as text
    template: str  # sha256 of the chat template text
    tokens: tuple[int, ...]

    def fields(self) -> dict[str, object]:
        return {
            "model": self.model,
            "runtime": self.runtime,
            "context": self.context,
            "template": self.template,
            "tokens_sha256": _tokens_digest(self.tokens),
            "n_tokens": len(self.tokens),
        }

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class DiskState:
    tokens: tuple[int, ...]
    data: bytes  # what llama_state_get_data wrote


def _tokens_digest(tokens: Sequence[int]) -> str:
    return hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()


def model_identity(path: Path, pinned_sha256: str | None = None, pinned_size: int | None = None) -> str:
    """Who the model file is, cheaply: size, mtime and a sha256 of its first and last MiB; a bundled model's
    pinned sha256 (verified in full when the file was put in place) when its size is the pinned size."""
    st = path.stat()
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(_HEAD))
        if st.st_size > 2 * _HEAD:
            f.seek(-_HEAD, os.SEEK_END)
            h.update(f.read(_HEAD))
    parts = [f"size={st.st_size}", f"mtime_ns={st.st_mtime_ns}"]
    parts.append(f"ends={h.hexdigest()}")
    if pinned_sha256 and pinned_size == st.st_size:
        parts.append(f"sha256={pinned_sha256}")
    return ";".join(parts)


def runtime_identity() -> str:
    """llama-cpp-python's version and its shared library's size and mtime (a rebuild with other CPU flags
    is another runtime)."""
    import llama_cpp

    parts = [f"llama-cpp-python={getattr(llama_cpp, '__version__', '?')}"]
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    for name in ("libllama.so", "libggml-base.so", "libggml-cpu.so", "libllama.dylib", "llama.dll"):
        lib = lib_dir / name
        if lib.exists():
            st = lib.stat()
            parts.append(f"{name}={st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


class DiskStates:
    """A directory of verified prompt states, at most ``max_bytes`` in all (least recently used go first)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # one writer at a time (saves run on a background thread)
        self._saving: list[threading.Thread] = []
        self._saving_lock = threading.Lock()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for tmp in self.dir.glob("*.tmp"):  # a write a crash interrupted
            tmp.unlink(missing_ok=True)

    def path_of(self, key: StateKey) -> Path:
        return self.dir / f"{key.digest()}{SUFFIX}"

    # -- reading --
    def load(self, key: StateKey) -> DiskState | None:
        """The state saved under ``key``, verified; None when there is none or it does not verify (the
        file is then deleted: the next save rebuilds it)."""
        path = self.path_of(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("prompt state %s unreadable (%s); rebuilding it", path.name, exc)
            return None
        state, why = _decode(raw, key)
        if state is None:
            log.warning("prompt state %s ignored and removed: %s", path.name, why)
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)  # recently used: pruned last
        except OSError:
            pass
        return state

    # -- writing --
    def save(self, key: StateKey, data: bytes) -> Path:
        """Write the state atomically (temporary file, fsync, rename, fsync of the directory); then prune."""
        payload = struct.pack(f"<{len(key.tokens)}i", *key.tokens) + data
        header = json.dumps(
            {
                **key.fields(),
                "payload_bytes": len(payload),
                "payload_sha256": hashlib.sha256(payload).hexdigest(),
            },
            sort_keys=True,
        ).encode()
        path = self.path_of(key)
        with self._lock:
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                with tmp.open("wb") as f:
                    f.write(MAGIC + struct.pack("<I", len(header)) + header + payload)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(self.dir)
            self._prune(keep=path)
        return path

    def save_in_background(self, key: StateKey, data: bytes) -> threading.Thread:
        """``save`` on a daemon thread (a failure is logged: the disk copy is an optimisation)."""

        def run() -> None:
            try:
                path = self.save(key, data)
                log.info(
                    "prompt state of %d tokens saved to %s (%d KiB)", len(key.tokens), path, len(data) >> 10
                )
            except Exception:  # noqa: BLE001
                log.warning("could not save the prompt state to %s", self.dir, exc_info=True)

        thread = threading.Thread(target=run, name="prompt-state-save", daemon=True)
        with self._saving_lock:
            self._saving = [t for t in self._saving if t.is_alive()]
            self._saving.append(thread)
        thread.start()
        return thread

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for the background saves started so far (the daemon is stopping; tests)."""
        with self._saving_lock:
            saving, self._saving = self._saving, []
        for thread in saving:
            thread.join(timeout)

    def _prune(self, keep: Path) -> None:
        files = []
        for p in self.dir.glob(f"*{SUFFIX}"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files):  # oldest first
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            p.unlink(missing_ok=True)
            total -= size

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob(f"*{SUFFIX}"))


def _decode(raw: bytes, key: StateKey) -> tuple[DiskState | None, str]:
    """The state in ``raw`` when every check passes, else (None, why)."""
    if not raw.startswith(MAGIC):
        return None, "not a prompt state file (or an older format)"
    at = len(MAGIC)
    if len(raw) < at + 4:
        return None, "torn: the header is cut short"
    (n,) = struct.unpack_from("<I", raw, at)
    at += 4
    try:
        header = json.loads(raw[at : at + n])
    except ValueError:
        return None, "torn or damaged header"
    if not isinstance(header, dict):
        return None, "damaged header"
    at += n
    for field, want in key.fields().items():
        if header.get(field) != want:
            return None, f"made for another {field}"
    payload = raw[at:]
    if len(payload) != header.get("payload_bytes"):
        return None, f"torn: {len(payload)} payload bytes of {header.get('payload_bytes')}"
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        return None, "the payload's checksum does not match"
    count = len(key.tokens)
    tokens = struct.unpack_from(f"<{count}i", payload, 0)
    if tuple(tokens) != key.tokens:
        return None, "made for other tokens"
    return DiskState(key.tokens, payload[4 * count :]), ""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
