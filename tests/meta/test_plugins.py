"""The one plugin mechanism (assistant/core/plugins.py): every built-in of every group resolves through it,
config names are checked against what is installed, and the loader's rules (built-ins first, a name kept
once, a broken plugin reported) hold. Fake distributions here are bare ``*.dist-info`` directories on
sys.path (importlib.metadata reads nothing else); tests/meta/test_plugins_channel_package.py installs a real one
with pip."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import NotifySettings, Settings, VoiceSettings, load_settings
from assistant.core import plugins
from assistant.core.errors import ConfigError
from assistant.llm.backends import BackendFactory, build_llm, llama_backend, openai_backend
from assistant.notify.channel import read_options
from assistant.notify.service import build_channels
from assistant.voice.audio import VoiceError

BUILTINS = {
    plugins.SKILLS: {"calc", "digest", "seuss", "summarize", "time", "when"},
    plugins.CHANNELS: {"desktop", "ntfy", "webhook"},
    plugins.BACKENDS: {"llama", "openai"},
    plugins.EMBEDDERS: {"onnx", "sentence-transformers"},
    plugins.SPEECH: {"stt.command", "stt.hybrid", "stt.pocketsphinx", "stt.whisper", "tts.command", "tts.espeak-ng"},
}


def fake_dist(site: Path, name: str, entry_points: str, modules: dict[str, str] | None = None) -> None:
    """A distribution as importlib.metadata sees one: ``NAME-1.0.dist-info`` with its entry points."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(source)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in ("fake_plugin_mod",):
        sys.modules.pop(name, None)


# ---------------------------------------------------------------- every built-in of every group


def test_the_groups_are_the_ones_this_distribution_registers() -> None:
    assert set(plugins.GROUPS) == set(BUILTINS)


@pytest.mark.parametrize("group", sorted(BUILTINS))
def test_every_builtin_resolves_through_the_loader(group: str) -> None:
    found = plugins.find(group)
    assert found.errors == ()
    builtins = {p.name: p for p in found.plugins if p.builtin}
    assert set(builtins) == BUILTINS[group]
    assert all(p.origin == "builtin" for p in builtins.values())
    loaded = plugins.load_all(group, what=group)
    assert loaded.errors == ()
    for plugin, obj in loaded.items:
        if group == plugins.SKILLS:
            from assistant.skillkit.registry import specs_in

            assert specs_in(obj), plugin
        else:
            assert callable(obj), plugin


def test_skills_are_discovered_through_the_same_loader() -> None:
    from assistant.skillkit.registry import SkillRegistry

    registry = SkillRegistry.discover()
    assert registry.errors == []
    assert {registry.get(n).origin for n in ("time", "seuss", "digest")} == {"builtin"}


# ---------------------------------------------------------------- assistant.channels


def test_builtin_channels_are_configured_by_the_flat_keys_or_their_tables(tmp_path: Path) -> None:
    def names(**notify: object) -> list[str]:
        channels = build_channels(Settings(data_dir=tmp_path, notify=NotifySettings(**notify)))  # type: ignore[arg-type]
        for c in channels:
            c.close()
        return [c.name for c in channels]

    assert names(desktop=False) == []
    assert names(desktop=False, webhook_url="http://127.0.0.1:9/hook") == ["webhook"]
    assert names(desktop=False, channels={"webhook": {"url": "http://127.0.0.1:9/hook"}}) == ["webhook"]
    assert names(desktop=False, ntfy_url="http://127.0.0.1:9/t", channels={"ntfy": {"enabled": False}}) == []
    both = {"ntfy": {"url": "http://127.0.0.1:9/t", "token": "tk"}, "webhook": {"url": "https://x.org/h"}}
    assert sorted(names(desktop=False, channels=both)) == ["ntfy", "webhook"]


def test_a_table_overrides_the_flat_keys(tmp_path: Path) -> None:
    from assistant.notify.ntfy import NtfyChannel

    ns = NotifySettings(
        desktop=False, ntfy_url="http://127.0.0.1:9/old", ntfy_token="old", timeout=3, max_attempts=2,
        channels={"ntfy": {"url": "http://127.0.0.1:9/new", "max_attempts": 7}},
    )  # fmt: skip
    (channel,) = build_channels(Settings(data_dir=tmp_path, notify=ns))
    assert isinstance(channel, NtfyChannel)
    assert (channel.url, channel.token, channel.max_attempts) == ("http://127.0.0.1:9/new", "old", 7)
    channel.close()


def test_a_bad_channel_option_stops_the_start_naming_it(tmp_path: Path) -> None:
    bad = {"webhook": {"url": "http://127.0.0.1:9/", "retries": 3}}
    with pytest.raises(ConfigError, match=r"notify\.channels\.webhook: unknown option 'retries'"):
        build_channels(Settings(data_dir=tmp_path, notify=NotifySettings(desktop=False, channels=bad)))
    with pytest.raises(ConfigError, match=r"notify\.channels\.ntfy: url must be an http"):
        build_channels(
            Settings(
                data_dir=tmp_path, notify=NotifySettings(desktop=False, channels={"ntfy": {"url": "ftp://x"}})
            )
        )
    with pytest.raises(ValueError, match="option 'timeout' must be int or float"):
        read_options({"timeout": "soon"}, {"timeout": (int, float)})


def test_an_unknown_channel_name_in_config_names_the_installed_ones(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[notify.channels.matrix]\nroom = "!abc"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "notify.channels" in err.value.message
    assert (
        "no notification channel plugin named 'matrix' is installed (installed: desktop, ntfy, webhook)"
        in (err.value.message)
    )


# ---------------------------------------------------------------- assistant.backends


def test_backend_names_resolve_to_their_factories() -> None:
    assert plugins.load_factory(plugins.BACKENDS, "llama", setting="model.backend") is llama_backend
    assert plugins.load_factory(plugins.BACKENDS, "openai", setting="model.backend") is openai_backend
    factory: BackendFactory = llama_backend  # the built-ins fit the protocol (mypy checks this line)
    assert callable(factory)


def test_build_llm_builds_the_backend_config_names(tmp_path: Path) -> None:
    from assistant.llm.remote import RemoteBackend

    settings = load_settings(
        None, data_dir=tmp_path,
        model={"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "remote_model": "m"},
    )  # fmt: skip
    llm = build_llm(settings)
    assert isinstance(llm, RemoteBackend) and llm.model == "m"
    llm.close()
    with pytest.raises(ConfigError, match="model.base_url: required"):  # the backend's own check
        build_llm(load_settings(None, data_dir=tmp_path, model={"backend": "openai"}))


def test_an_unknown_backend_names_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"model\.backend: .*'vllm' is installed \(installed: llama, openai\)"
    ):
        load_settings(None, data_dir=tmp_path, model={"backend": "vllm"})
    settings = Settings.model_construct(data_dir=tmp_path)  # unchecked, as a hand-built one may be
    settings.model = settings.model.model_copy(update={"backend": "vllm"})
    with pytest.raises(plugins.PluginError, match=r"model\.backend = 'vllm': no such plugin"):
        build_llm(settings)


# ---------------------------------------------------------------- assistant.embedders


def test_embedder_names_resolve_without_loading_a_model(tmp_path: Path) -> None:
    from memory.embedder import SentenceTransformerEmbedder, build_embedder
    from memory.onnx_embedder import OnnxEmbedder

    onnx = build_embedder("onnx", tmp_path, threads=1, bulk_threads=2)
    assert isinstance(onnx, OnnxEmbedder) and not onnx.loaded
    assert (onnx.threads, onnx.bulk_threads) == (1, 2)
    st = build_embedder("sentence-transformers", tmp_path, threads=0)
    assert isinstance(st, SentenceTransformerEmbedder) and not st.loaded and st.threads >= 1


def test_an_unknown_embedder_names_the_installed_ones(tmp_path: Path) -> None:
    from memory.embedder import build_embedder

    with pytest.raises(ConfigError, match=r"installed: onnx, sentence-transformers"):
        load_settings(None, data_dir=tmp_path, memory={"embedder": "bge"})
    with pytest.raises(plugins.PluginError, match=r"memory\.embedder = 'bge'"):
        build_embedder("bge", tmp_path)
    assert load_settings(
        None, data_dir=tmp_path, memory={"embedder": "sentence-transformers"}
    ).memory.embedder


# ---------------------------------------------------------------- assistant.speech


def test_speech_names_resolve_to_their_engines() -> None:
    from assistant.voice.stt import CommandSTT, PocketSphinxSTT, build_stt
    from assistant.voice.tts import CommandTTS, EspeakTTS, build_tts

    assert isinstance(build_stt(VoiceSettings(stt="pocketsphinx")), PocketSphinxSTT)  # built lazily: no model yet
    assert isinstance(build_stt(VoiceSettings(stt="command", stt_command="w {wav}")), CommandSTT)
    assert isinstance(build_tts(VoiceSettings()), EspeakTTS)
    assert isinstance(build_tts(VoiceSettings(tts="command", tts_command="p {wav}")), CommandTTS)
    with pytest.raises(VoiceError, match=r"voice\.stt = 'espeak-ng': choose command, hybrid, pocketsphinx, whisper, or"):
        build_stt(VoiceSettings(stt="espeak-ng"))  # a text-to-speech engine is no speech-to-text one


# ---------------------------------------------------------------- the loader's rules


def test_builtins_first_then_by_distribution_and_a_name_kept_once(site: Path) -> None:
    fake_dist(
        site,
        "zz-channels",
        "[assistant.channels]\nwebhook = fake_plugin_mod:other\naaa = fake_plugin_mod:f\n",
    )
    fake_dist(site, "aa-channels", "[assistant.channels]\nzzz = fake_plugin_mod:f\n")
    found = plugins.find(plugins.CHANNELS)
    assert found.names() == ["desktop", "ntfy", "webhook", "zzz", "aaa"]
    assert found.get("webhook") is not None and found.get("webhook").origin == "builtin"  # type: ignore[union-attr]
    assert found.get("aaa").origin == "zz-channels 1.0"  # type: ignore[union-attr]
    assert found.errors == (
        "assistant.channels entry point 'webhook' (fake_plugin_mod:other) from zz-channels 1.0 ignored: "
        "builtin has that name",
    )
    assert [p.name for p in plugins.find(plugins.CHANNELS, unique=False).plugins].count("webhook") == 2


def test_a_broken_plugin_is_reported_and_the_others_load(site: Path) -> None:
    fake_dist(
        site, "half-broken", "[assistant.embedders]\nbroken = no_such_module_xyz:f\nfine = fake_plugin_mod:f\n"
        "notcallable = fake_plugin_mod:VALUE\n",
        {"fake_plugin_mod": "VALUE = 3\n\ndef f(data_dir, *, threads, bulk_threads):\n    return 'an embedder'\n"},
    )  # fmt: skip
    loaded = plugins.load_all(plugins.EMBEDDERS, what="embedder")
    assert {p.name for p, _ in loaded.items} == {"onnx", "sentence-transformers", "fine", "notcallable"}
    assert (
        len(loaded.errors) == 1
        and "embedder entry point 'broken' (no_such_module_xyz:f) failed to load" in (loaded.errors[0])
    )
    with pytest.raises(
        plugins.PluginError,
        match=r"memory\.embedder = 'broken': the plugin no_such_module_xyz:f \(half-broken 1\.0\) failed",
    ):
        plugins.load(plugins.EMBEDDERS, "broken", setting="memory.embedder")
    with pytest.raises(plugins.PluginError, match="is not callable"):
        plugins.load_factory(plugins.EMBEDDERS, "notcallable", setting="memory.embedder")
    from memory.embedder import build_embedder

    assert build_embedder("fine", site) == "an embedder"  # type: ignore[comparison-overlap]


def test_an_unconfigured_broken_channel_is_left_out_a_configured_one_stops_the_start(
    site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_dist(site, "bad-channel", "[assistant.channels]\nbroken = no_such_module_xyz:f\n")
    assert build_channels(Settings(data_dir=tmp_path, notify=NotifySettings(desktop=False))) == []
    assert "no_such_module_xyz" in caplog.text
    configured = NotifySettings(desktop=False, channels={"broken": {"x": 1}})
    with pytest.raises(plugins.PluginError, match=r"notify\.channels\.broken = 'broken': the plugin"):
        build_channels(Settings(data_dir=tmp_path, notify=configured))


@pytest.mark.slow
def test_the_llama_backend_plugin_loads_the_bundled_model(tmp_path: Path) -> None:
    from assistant.llm.llama import LlamaBackend

    settings = load_settings(
        None, data_dir=tmp_path, model={"backend": "llama", "bundled": "smollm2", "n_ctx": 512}
    )
    llm = build_llm(settings)
    try:
        assert isinstance(llm, LlamaBackend) and llm.n_ctx == 512
    finally:
        llm.close()
