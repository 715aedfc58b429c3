"""Text-to-speech: espeak-ng for real, the command engine (with espeak-ng as the program), text clean-up."""

from __future__ import annotations

import shutil
import sys

import pytest

from assistant.config import VoiceSettings
from assistant.voice.audio import VoiceError
from assistant.voice.tts import CommandTTS, EspeakTTS, build_tts, speakable
from tests.voice_support import need_espeak


def test_speakable_cleans_markdown_urls_and_length() -> None:
    assert speakable("**Hello** _there_ see https://example.com/x?y=1 now") == "Hello there see a link to example.com now."
    assert speakable("line one\nline\x00two") == "line one line two."
    long = "This is a sentence. " * 200
    out = speakable(long, limit=500)
    assert len(out) <= 500 and out.endswith(".")


def test_espeak_speaks_text_into_audio() -> None:
    need_espeak()
    audio = EspeakTTS().synthesize("The time is twelve o'clock.")
    assert audio.rate == 22050
    assert 1.0 < audio.duration < 4.0
    assert audio.rms() > 500


def test_text_starting_with_a_dash_is_spoken_not_parsed_as_an_option() -> None:
    need_espeak()
    audio = EspeakTTS().synthesize("--help me -w /tmp/x.wav")
    assert audio.duration > 1.0  # spoken; as arguments it would have printed help or written elsewhere


def test_slower_speech_is_longer() -> None:
    need_espeak()
    text = "Read me the headlines from today."
    assert EspeakTTS(speed=100).synthesize(text).duration > 1.4 * EspeakTTS(speed=250).synthesize(text).duration


def test_missing_binary_and_bad_voice_are_voice_errors() -> None:
    with pytest.raises(VoiceError, match="not installed"):
        EspeakTTS(binary="no-such-espeak").synthesize("hi")
    need_espeak()
    with pytest.raises(VoiceError, match="espeak-ng"):
        EspeakTTS(voice="xx-nonexistent-voice").synthesize("hi")


def test_command_engine_with_a_real_program() -> None:
    exe = shutil.which("espeak-ng") or pytest.skip("espeak-ng is not installed")
    tts = CommandTTS(f"{exe} -v en-gb -w {{wav}} --stdin")
    audio = tts.synthesize("Hello from a plugged in engine.")
    assert audio.duration > 1.0 and audio.rms() > 500


def test_command_engine_errors() -> None:
    with pytest.raises(VoiceError, match=r"\{wav\}"):
        CommandTTS("piper --model voice.onnx")
    with pytest.raises(VoiceError, match="exited with 0"):  # succeeded but wrote nothing
        CommandTTS(f"{sys.executable} -c pass {{wav}}").synthesize("hi")


def test_build_tts_from_config() -> None:
    tts = build_tts(VoiceSettings(espeak_voice="en-gb", espeak_speed=200))
    assert isinstance(tts, EspeakTTS) and (tts.voice, tts.speed) == ("en-gb", 200)
    assert isinstance(build_tts(VoiceSettings(tts="command", tts_command="piper -f {wav}")), CommandTTS)
    with pytest.raises(VoiceError, match="tts_command"):
        build_tts(VoiceSettings(tts="command"))
    with pytest.raises(VoiceError, match="choose command, espeak-ng, or package.module:Class"):
        build_tts(VoiceSettings(tts="festival"))
