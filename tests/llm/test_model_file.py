"""Model files: the bundled default assembled once and verified; bad files give a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.core.errors import ModelFileError
from assistant.llm.model_file import bundled_model_path, check_gguf, resolve_model_path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        check_gguf(tmp_path / "nope.gguf")


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not a file"):
        check_gguf(tmp_path)


def test_not_gguf(tmp_path: Path) -> None:
    p = tmp_path / "model.gguf"
    p.write_bytes(b"<html>not a model</html>" * 100)
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        check_gguf(p)


def test_tiny_truncated_gguf(tmp_path: Path) -> None:
    p = tmp_path / "model.gguf"
    p.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 10)
    with pytest.raises(ModelFileError, match="truncated"):
        check_gguf(p)


def test_configured_path_is_checked(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, model={"path": str(tmp_path / "absent.gguf")})
    with pytest.raises(ModelFileError, match="absent.gguf does not exist"):
        resolve_model_path(settings)


@pytest.mark.slow
def test_bundled_model_is_assembled_once_and_reused(tmp_path: Path) -> None:
    first = bundled_model_path(tmp_path, "gemma3")
    assert first.exists() and first.stat().st_size > 100_000_000
    mtime = first.stat().st_mtime_ns
    assert bundled_model_path(tmp_path, "gemma3") == first
    assert first.stat().st_mtime_ns == mtime  # not rebuilt
    # A damaged file (size changes) is assembled again.
    with first.open("r+b") as f:
        f.truncate(1000)
    assert bundled_model_path(tmp_path, "gemma3").stat().st_size > 100_000_000


@pytest.mark.slow
def test_truncated_real_model_gives_clear_error(tmp_path: Path) -> None:
    from assistant.config import ModelSettings
    from assistant.llm.llama import LlamaBackend

    whole = bundled_model_path(tmp_path / "data", "smollm2")
    cut = tmp_path / "cut.gguf"
    with whole.open("rb") as src:
        cut.write_bytes(src.read(whole.stat().st_size // 3))
    with pytest.raises(ModelFileError, match="truncated, corrupt"):
        LlamaBackend.load(cut, ModelSettings(n_ctx=512))
