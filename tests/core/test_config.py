from __future__ import annotations

import pickle
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.cli.serve import check_listen_policy
from assistant.config import Settings, is_loopback_host, load_settings
from assistant.core.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(None)
    assert s.server.host == "127.0.0.1"
    assert s.server.port == 8765
    assert s.model.backend == "llama"
    assert s.model.path is None
    assert s.model.n_threads >= 1
    assert s.data_dir == Path(tmp_path / "home" / ".local" / "share" / "assistant")


def test_toml_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = 9000\nhost = "127.0.0.2"\n[model]\nn_ctx = 1024\n')
    monkeypatch.setenv("ASSISTANT_SERVER__PORT", "9100")
    s = load_settings(cfg)
    assert s.server.port == 9100  # env wins over the file
    assert s.server.host == "127.0.0.2"  # file wins over defaults
    assert s.model.n_ctx == 1024


def test_config_from_env_var_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nmax_tokens = 77\n")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(cfg))
    assert load_settings(None).model.max_tokens == 77


def test_default_config_file_is_read(tmp_path: Path) -> None:
    default = tmp_path / "home" / ".config" / "assistant" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text('data_dir = "/tmp/x-assistant"\n')
    assert load_settings(None).data_dir == Path("/tmp/x-assistant")


def test_data_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "d"))
    assert load_settings(None).data_dir == tmp_path / "d"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[server]\nport = "eighty"\n', "server.port: Input should be a valid integer"),
        ("[server]\nport = 70000\n", "server.port:"),
        ("[model]\nbogus = 1\n", "model.bogus: unknown setting"),
        ('[model]\nbackend = "gpu"\n', "model.backend:"),
        ("[model\n", "is not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert expected in err.value.message
    assert "\n" not in err.value.message


def test_bad_env_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MODEL__N_CTX", "lots")
    with pytest.raises(ConfigError, match=r"^model\.n_ctx: "):
        load_settings(None)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.1.2.3"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)
    check_listen_policy(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.4", "::", "example.org"])
def test_listening_beyond_loopback_needs_a_token(host: str) -> None:
    assert not is_loopback_host(host)
    with pytest.raises(ConfigError, match="without an API token"):
        check_listen_policy(host, None)
    check_listen_policy(host, "s3cret")


def test_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "config.example.toml"
    s = load_settings(example)
    assert s.server.host == "127.0.0.1"
    assert s.timezone == "Europe/Berlin"


def test_loaded_settings_are_plain_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('timezone = "Asia/Tokyo"\n[server]\nport = 9001\n')
    s = load_settings(cfg, data_dir=tmp_path / "d")
    assert type(s) is Settings
    assert s == load_settings(cfg, data_dir=tmp_path / "d")
    assert pickle.loads(pickle.dumps(s)) == s
    assert s.model_fields_set == {"timezone", "server", "data_dir", "feeds", "skills"}  # feeds, skills: set by conftest's environment
    assert Settings().server.port == 8765  # Settings() alone: environment and defaults, no file


def test_files_loaded_at_the_same_time_do_not_mix(tmp_path: Path) -> None:
    """Each load_settings call has its own file contents (no class attribute shared between calls).
    With a class attribute set per call, about one load in five read another thread's file here."""
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        _load_files_in_threads(tmp_path)
    finally:
        sys.setswitchinterval(old_interval)


def _load_files_in_threads(tmp_path: Path) -> None:
    files = []
    for port in range(9000, 9008):
        cfg = tmp_path / f"{port}.toml"
        cfg.write_text(f"[server]\nport = {port}\n")
        files.append((port, cfg))
    start = threading.Barrier(len(files))

    def load(port: int, cfg: Path) -> list[int]:
        start.wait()
        return [load_settings(cfg).server.port for _ in range(50)]

    with ThreadPoolExecutor(len(files)) as pool:
        results = list(pool.map(lambda f: (f[0], load(*f)), files))
    for port, seen in results:
        assert set(seen) == {port}
    assert load_settings(None).server.port == 8765  # and nothing is left behind


def test_overrides_beat_environment_beat_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nn_ctx = 1024\nmax_tokens = 10\nn_batch = 64\n")
    monkeypatch.setenv("ASSISTANT_MODEL__MAX_TOKENS", "20")
    monkeypatch.setenv("ASSISTANT_MODEL__N_BATCH", "128")
    s = load_settings(cfg, model={"n_batch": 256})
    assert (s.model.n_ctx, s.model.max_tokens, s.model.n_batch) == (1024, 20, 256)
