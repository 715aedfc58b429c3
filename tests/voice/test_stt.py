"""Speech-to-text: the command grammar, PocketSphinx on espeak-ng speech, the command engine, engine choice."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.config import VoiceSettings
from assistant.skillkit.registry import SkillRegistry
from assistant.voice.audio import Audio, VoiceError, read_wav
from assistant.voice.phrases import (
    DEFAULT_PHRASES,
    normalize,
    skill_for,
    skill_phrases,
    strip_optional,
    to_jsgf,
    unique_phrases,
)
from assistant.voice.stt import CommandSTT, PocketSphinxSTT, build_stt
from tests.voice_support import need_pocketsphinx, speak_to_wav


def test_phrase_helpers() -> None:
    assert normalize("What's the TIME?  ") == "what's the time"
    assert normalize("to(3) me(2)") == "to me"
    assert strip_optional("hey please what time is it now") == "what time is it"
    assert strip_optional("computer what time is it please", "Computer") == "what time is it"
    assert unique_phrases(["Stop!", "stop", " ", "tell me a joke"]) == ["stop", "tell me a joke"]
    grammar = to_jsgf(["what time is it", "stop"], wake_word="computer")
    assert "public <utterance> = computer [ please | hey ] <command> [ please | now ];" in grammar
    assert "<command> = ( what time is it ) | ( stop );" in grammar


def test_skill_phrases_from_the_daemon_listing() -> None:
    items = [
        {"name": "seuss_story", "description": "x"},
        {"name": "digest", "phrases": ["give me the news digest", "digest of {topic}"]},
        {"no_name": True},
    ]
    got = skill_phrases(items)
    assert "run seuss story" in got and "run the seuss story skill" in got and "seuss story" in got
    assert "give me the news digest" in got and "run digest" in got
    assert not [p for p in got if "{" in p]  # an open slot cannot go into a closed grammar


def builtin_listing() -> list[dict[str, object]]:
    """What GET /api/skills lists for the built-in skills."""
    return SkillRegistry.discover().describe()


def test_no_skill_phrases_are_hard_coded() -> None:
    declared = {"what time is it", "read me the headlines", "tell me a seuss story"}
    assert not declared & set(DEFAULT_PHRASES)
    assert declared <= set(skill_phrases(builtin_listing()))


def test_recognised_commands_map_to_the_daemons_skills() -> None:
    weather = {"name": "weather_report", "phrases": ["how is the weather"], "origin": "x 1"}
    items = [*builtin_listing(), weather]
    assert skill_for("read me the headlines", items) == "digest"
    assert skill_for("tell me a seuss story", items) == "seuss"
    assert skill_for("what day is it", items) == "time"
    assert skill_for("how is the weather", items) == "weather_report"
    assert skill_for("run the weather report skill", items) == "weather_report"
    time_only = [i for i in items if i["name"] == "time"]
    assert skill_for("read me the headlines", time_only) is None  # the daemon has no digest skill
    assert skill_for("tell me a joke", items) is None
    # only names (an older caller): the phrases of the skills installed here, and "run <name>"
    names = {"digest", "seuss", "time", "weather_report"}
    assert skill_for("what time is it", names) == "time"
    assert skill_for("read me the headlines", names) == "digest"
    assert skill_for("run the weather report skill", names) == "weather_report"
    assert skill_for("how is the weather", names) is None  # not installed here: its phrases are unknown


# --- PocketSphinx on speech made by espeak-ng ------------------------------------------------------------


@pytest.fixture(scope="module")
def sphinx() -> PocketSphinxSTT:
    need_pocketsphinx()
    return PocketSphinxSTT([*DEFAULT_PHRASES, *skill_phrases(builtin_listing())])


COMMANDS = ["what time is it", "read me the headlines", "give me the digest", "tell me a seuss story"]


@pytest.mark.parametrize("voice,speed", [("en-us", 160), ("en-gb", 200)])
def test_grammar_recognises_spoken_commands(sphinx: PocketSphinxSTT, tmp_path: Path, voice: str, speed: int) -> None:
    heard = []
    for i, phrase in enumerate(COMMANDS):
        t = sphinx.transcribe(read_wav(speak_to_wav(phrase, tmp_path / f"{i}.wav", voice=voice, speed=speed)))
        heard.append((t.text, t.source))
    assert heard == [(p, "grammar") for p in COMMANDS]


def test_politeness_words_are_allowed_and_stripped(sphinx: PocketSphinxSTT, tmp_path: Path) -> None:
    t = sphinx.transcribe(read_wav(speak_to_wav("please tell me a seuss story", tmp_path / "p.wav")))
    assert (t.text, t.source) == ("tell me a seuss story", "grammar")


def test_speech_off_the_grammar_falls_back_to_dictation(sphinx: PocketSphinxSTT, tmp_path: Path) -> None:
    t = sphinx.transcribe(read_wav(speak_to_wav("how are you doing today", tmp_path / "d.wav")))
    assert t.source == "dictation"
    assert t.text.startswith("how are you doing")


def test_silence_and_empty_audio_give_no_transcript(sphinx: PocketSphinxSTT) -> None:
    assert not sphinx.transcribe(Audio(np.zeros(0, dtype=np.int16), 16000))
    t = sphinx.transcribe(Audio(np.zeros(16000, dtype=np.int16), 16000))
    assert t.source in ("none", "dictation") and t.text not in COMMANDS


def test_without_dictation_off_grammar_speech_is_dropped(tmp_path: Path) -> None:
    need_pocketsphinx()
    stt = PocketSphinxSTT(COMMANDS, dictation=False)
    t = stt.transcribe(read_wav(speak_to_wav("who wrote hamlet", tmp_path / "h.wav")))
    assert (t.text, t.source) == ("", "none")


def test_wake_word_is_required_then_stripped(tmp_path: Path) -> None:
    need_pocketsphinx()
    stt = PocketSphinxSTT(COMMANDS, wake_word="computer", dictation=False)
    t = stt.transcribe(read_wav(speak_to_wav("computer, read me the headlines", tmp_path / "w.wav")))
    assert (t.text, t.source) == ("read me the headlines", "grammar")
    assert not stt.transcribe(read_wav(speak_to_wav("read me the headlines", tmp_path / "n.wav")))


def test_unknown_words_leave_the_grammar_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    need_pocketsphinx()
    stt = PocketSphinxSTT(["what time is it", "frobnicate the zorblax"])
    stt._load()
    assert stt.phrases == ["what time is it"]
    assert "zorblax" in caplog.text
    with pytest.raises(VoiceError, match="wake word"):
        PocketSphinxSTT(["stop"], wake_word="zorblaxian")._load()


# --- other engines ---------------------------------------------------------------------------------------


def test_command_engine_runs_a_program_on_a_16k_wav(tmp_path: Path) -> None:
    script = tmp_path / "fake_whisper.py"
    script.write_text(
        "import sys, wave\n"
        "w = wave.open(sys.argv[1])\n"
        "print(f'  heard {w.getnframes()} frames at {w.getframerate()} Hz  ')\n"
    )
    stt = CommandSTT(f"{sys.executable} {script} {{wav}}")
    t = stt.transcribe(Audio(np.ones(22050, dtype=np.int16), 22050))
    assert (t.text, t.source) == ("heard 16000 frames at 16000 Hz", "engine")


def test_command_engine_errors_are_voice_errors(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match=r"\{wav\}"):
        CommandSTT("whisper-cli -m model.bin")
    with pytest.raises(VoiceError, match="exited with 3"):
        CommandSTT(f"{sys.executable} -c 'import sys; sys.exit(3)' {{wav}}").transcribe(
            Audio(np.ones(100, dtype=np.int16), 16000)
        )
    with pytest.raises(VoiceError, match="failed"):
        CommandSTT("/nonexistent/whisper {wav}").transcribe(Audio(np.ones(100, dtype=np.int16), 16000))


class EchoSTT:
    """A plug-in engine loaded by ``voice.stt = "tests.voice.test_stt:EchoSTT"``."""

    def __init__(self, voice: VoiceSettings) -> None:
        self.voice = voice


def test_build_stt_picks_the_engine_from_config() -> None:
    sphinx = VoiceSettings(stt="pocketsphinx")
    assert isinstance(build_stt(sphinx), PocketSphinxSTT)
    pod_bay = VoiceSettings(stt="pocketsphinx", phrases=["open the pod bay doors"])
    assert build_stt(pod_bay, ["run digest"]).wanted[-2:] == ["open the pod bay doors", "run digest"]
    without_daemon = build_stt(sphinx).wanted  # no daemon listing: the skills installed here
    assert "what time is it" in without_daemon and "read me the headlines" in without_daemon
    assert "what time is it" not in build_stt(sphinx, ["run digest"]).wanted  # the daemon's only
    assert isinstance(build_stt(VoiceSettings(stt="command", stt_command="x {wav}")), CommandSTT)
    assert isinstance(build_stt(VoiceSettings(stt="tests.voice.test_stt:EchoSTT")), EchoSTT)
    with pytest.raises(VoiceError, match="stt_command"):
        build_stt(VoiceSettings(stt="command"))
    with pytest.raises(VoiceError, match="cannot load"):
        build_stt(VoiceSettings(stt="no_such_module:Engine"))
    with pytest.raises(VoiceError, match="choose command, hybrid, pocketsphinx, whisper, or package.module:Class"):
        build_stt(VoiceSettings(stt="vosk"))


def test_a_grammar_phrase_is_not_taken_from_audio_far_longer_than_it() -> None:
    assert not PocketSphinxSTT.too_long(1.8, "what time is it")
    assert not PocketSphinxSTT.too_long(5.5, "set a timer for ten minutes")  # slowly, with pauses
    assert PocketSphinxSTT.too_long(44.0, "what's the time")  # a reading of Dickens the grammar fitted
