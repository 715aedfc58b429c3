"""Finding and checking the GGUF model file: the configured one, or a bundled one (assistant.llm.bundled)."""

from __future__ import annotations

import logging
from pathlib import Path

from assistant.config import Settings
from assistant.core.errors import ModelFileError
from assistant.llm.bundled import BUNDLED, DEFAULT_BUNDLED

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


def bundled_model_path(data_dir: Path, name: str = DEFAULT_BUNDLED) -> Path:
    """The GGUF file of the bundled model ``name`` (see assistant.llm.bundled), checked."""
    return check_gguf(BUNDLED[name].locate(data_dir))


def resolve_model_path(settings: Settings) -> Path:
    """``model.path`` when set, else the bundled model named by ``model.bundled``."""
    if settings.model.path is None:
        return bundled_model_path(settings.data_dir, settings.model.bundled)
    return check_gguf(Path(settings.model.path).expanduser())
