"""Putting a bundled model's GGUF in place: found in its packages, joined from parts once, verified by sha256.

The packages that carry the weights are never imported (``importlib.util.find_spec`` finds their folders):
importing runs the publisher's code, and the Qwen packages' publisher is anonymous.

``assemble`` is the one way a part-packaged model (Qwen 0.5B and 1.5B, Gemma 3) becomes a file: the parts are
joined into a temporary file beside the target, flushed to disk, checked for size and sha256, and renamed over
the target (atomic), so a crash or a full disk never leaves a file that looks whole. ``verify_in_place`` checks
a GGUF read where it lies (SmolLM2's). Both record what they checked in a small stamp in ``<data_dir>/models``
(path, size, mtime, sha256), so later starts skip the hash until the file changes.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from assistant.core.errors import ModelFileError
from assistant.core.files import file_sha256

log = logging.getLogger(__name__)

BLOCK = 1 << 20


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (None when it is not installed)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _stamp_path(models_dir: Path, target: Path) -> Path:
    return models_dir / f"{target.name}.verified.json"


def _stamp(target: Path, sha256: str) -> dict[str, object]:
    st = target.stat()
    return {"path": str(target), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def _already_verified(stamp: Path, target: Path, sha256: str) -> bool:
    if not target.is_file() or not stamp.is_file():
        return False
    try:
        seen = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return bool(seen == _stamp(target, sha256))


def _write_stamp(stamp: Path, target: Path, sha256: str) -> None:
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")  # two processes verifying at once each rename their own
    tmp.write_text(json.dumps(_stamp(target, sha256)))
    tmp.replace(stamp)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_in_place(path: Path, size: int, sha256: str, models_dir: Path, fix: str) -> Path:
    """``path`` (a GGUF inside a package) checked once for size and sha256; ModelFileError names ``fix``."""
    stamp = _stamp_path(models_dir, path)
    if _already_verified(stamp, path, sha256):
        return path
    if not path.is_file():
        raise ModelFileError(f"the bundled model file {path} is missing; reinstall it: {fix}")
    got_size = path.stat().st_size
    if got_size != size:
        raise ModelFileError(f"the bundled model file {path} has {got_size:,} bytes, not {size:,}; reinstall it: {fix}")
    got = file_sha256(path)
    if got != sha256:
        raise ModelFileError(
            f"the bundled model file {path} failed its sha256 check (got {got}, expected {sha256}); "
            f"reinstall it: {fix}"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    _write_stamp(stamp, path, sha256)
    return path


def assemble(parts: Sequence[Path], target: Path, size: int, sha256: str, fix: str) -> Path:
    """Join ``parts`` in order into ``target`` once (temp file, fsync, size and sha256, atomic rename).

    A target whose stamp matches is reused as it is; one that changed since (or was never verified) is
    assembled again. A wrong size or hash raises ModelFileError naming the file and ``fix`` (the command
    that reinstalls the parts), and leaves nothing behind.
    """
    stamp = _stamp_path(target.parent, target)
    if _already_verified(stamp, target, sha256):
        return target
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelFileError(f"the model parts {', '.join(missing)} are missing; reinstall them: {fix}")
    total = sum(p.stat().st_size for p in parts)
    if total != size:
        raise ModelFileError(
            f"the parts of {target.name} hold {total:,} bytes, not {size:,} (a part is damaged or from another "
            f"version); reinstall them: {fix}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    log.info("assembling the bundled model %s from %d parts (once)", target, len(parts))
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(BLOCK):
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        got = file_sha256(partial)
        if got != sha256:
            raise ModelFileError(
                f"{target.name} assembled from its parts failed its sha256 check (got {got}, expected "
                f"{sha256}); the parts are damaged or not the pinned ones: reinstall them: {fix}"
            )
        partial.replace(target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise ModelFileError(f"could not assemble {target}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    _write_stamp(stamp, target, sha256)
    return target
