"""Threads and batch chosen for the machine (assistant.core.threads), on made-up /sys trees."""

from __future__ import annotations

from pathlib import Path

from assistant.config import ModelSettings
from assistant.core.threads import choose_batch, choose_threads


def cpu_tree(root: Path, cpus: dict[int, dict[str, int]]) -> Path:
    for cpu, files in cpus.items():
        for name, value in files.items():
            p = root / f"cpu{cpu}" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{value}\n")
    return root


def test_all_cores_alike_get_a_thread_each(tmp_path: Path) -> None:
    root = cpu_tree(tmp_path, {c: {"cpu_capacity": 1024, "topology/core_id": c} for c in range(4)})
    choice = choose_threads([0, 1, 2, 3], root)
    assert choice.value == 4  # a Raspberry Pi 5: four Cortex-A76
    assert "4 CPU(s)" in choice.reason and "event loop" in choice.reason


def test_big_little_uses_the_big_cores_only(tmp_path: Path) -> None:
    # RK3588: four Cortex-A55 (capacity 530) and four Cortex-A76 (1024)
    cpus = {c: {"cpu_capacity": 530 if c < 4 else 1024, "topology/core_id": c} for c in range(8)}
    choice = choose_threads(list(range(8)), cpu_tree(tmp_path, cpus))
    assert choice.value == 4
    assert "big.LITTLE by capacity" in choice.reason


def test_big_little_by_max_frequency_when_there_is_no_capacity(tmp_path: Path) -> None:
    cpus = {c: {"cpufreq/cpuinfo_max_freq": 1_800_000 if c < 2 else 2_400_000} for c in range(6)}
    choice = choose_threads(list(range(6)), cpu_tree(tmp_path, cpus))
    assert choice.value == 4
    assert "max frequency" in choice.reason


def test_smt_siblings_count_once(tmp_path: Path) -> None:
    cpus = {c: {"topology/core_id": c % 2, "topology/physical_package_id": 0} for c in range(4)}
    choice = choose_threads([0, 1, 2, 3], cpu_tree(tmp_path, cpus))
    assert choice.value == 2
    assert "SMT" in choice.reason


def test_only_the_cpus_the_process_may_use_count(tmp_path: Path) -> None:
    root = cpu_tree(tmp_path, {c: {"cpu_capacity": 1024, "topology/core_id": c} for c in range(8)})
    assert choose_threads([2, 5], root).value == 2


def test_no_sysfs_means_one_thread_per_cpu(tmp_path: Path) -> None:
    assert choose_threads([0, 1, 2], tmp_path / "missing").value == 3


def test_batch_follows_the_threads() -> None:
    assert choose_batch(1).value == 256
    assert choose_batch(4).value == 512


def test_the_config_overrides_the_choice() -> None:
    assert ModelSettings(n_threads=3).n_threads == 3
    assert ModelSettings(n_threads=1).n_batch == 256
    assert ModelSettings(n_threads=1, n_batch=64).n_batch == 64
    assert ModelSettings().n_threads == choose_threads().value
