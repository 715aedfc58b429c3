"""Finding and checking the GGUF model file: the configured one, or a bundled one (assistant.llm.bundled).

``model.bundled = "auto"`` (the default) is resolved here against the machine's RAM (``psutil``, or a
``total_ram`` passed in), and the choice and its reason are logged.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from assistant.config import Settings
from assistant.core.errors import ModelFileError
from assistant.llm.bundled import AUTO, BUNDLED, AutoChoice, choose_auto

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


def machine_ram() -> int:
    """Total RAM of this machine in bytes."""
    import psutil

    return int(psutil.virtual_memory().total)


def auto_choice(total_ram: int | None = None) -> AutoChoice:
    """Which bundled model ``model.bundled = "auto"`` runs on a machine with ``total_ram`` bytes, and why."""
    return choose_auto(machine_ram() if total_ram is None else total_ram)


def bundled_name(name: str, total_ram: int | None = None) -> str:
    """``name``, or the model "auto" picks (logged with its reason)."""
    if name != AUTO:
        return name
    chosen = auto_choice(total_ram)
    log.info('model.bundled = "auto": %s (%s)', chosen.name, chosen.reason)
    return chosen.name


def bundled_model_path(data_dir: Path, name: str, total_ram: int | None = None) -> Path:
    """The GGUF file of the bundled model ``name`` (see assistant.llm.bundled, or "auto"), verified."""
    name = bundled_name(name, total_ram)
    if name not in BUNDLED:
        raise ModelFileError(f"unknown bundled model {name!r}; known: {', '.join(BUNDLED)}")
    return check_gguf(BUNDLED[name].locate(data_dir))


def resolve_model_path(settings: Settings, total_ram: int | None = None) -> Path:
    """``model.path`` when set, else the bundled model named by ``model.bundled``."""
    if settings.model.path is None:
        return bundled_model_path(settings.data_dir, settings.model.bundled, total_ram)
    return check_gguf(Path(settings.model.path).expanduser())


def check_pinned_template(path: Path, template: str | None) -> None:
    """A bundled model's chat template must be the one reviewed and pinned with it (``template_sha256``).

    The template is a Jinja program from the file's publisher (anonymous for the Qwen files). The whole file
    was checked by sha256 when it was put in place; this checks again, at load, what llama.cpp actually read.
    Files that are not bundled models (by name) are not checked.
    """
    for model in BUNDLED.values():
        if path.name != model.file_name:
            continue
        got = hashlib.sha256(template.encode()).hexdigest() if template is not None else None
        if got != model.template_sha256:
            raise ModelFileError(
                f"the chat template in {path} is not the one pinned for the bundled model {model.name} "
                f"(sha256 {got}, expected {model.template_sha256}): the file was changed after it was "
                f"verified; delete it and reinstall: {model.install}"
            )
