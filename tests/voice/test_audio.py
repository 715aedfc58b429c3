"""Audio: WAV read/write, resampling, end-of-speech detection (synthetic signals; no device needed)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from assistant.voice.audio import (
    Audio,
    EndOfSpeechDetector,
    VoiceError,
    detect_utterance,
    read_wav,
    resample,
    write_wav,
)

RATE = 16_000


def tone(seconds: float, freq: float = 440.0, amp: float = 8000.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(seconds: float, rate: int = RATE, noise: float = 0.0) -> np.ndarray:
    n = int(seconds * rate)
    if not noise:
        return np.zeros(n, dtype=np.int16)
    return np.random.default_rng(1).normal(0, noise, n).astype(np.int16)


def peak_hz(a: Audio) -> float:
    spectrum = np.abs(np.fft.rfft(a.samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(a.samples), 1 / a.rate)[int(np.argmax(spectrum))])


def test_wav_round_trip(tmp_path: Path) -> None:
    a = Audio(tone(0.5), RATE)
    write_wav(tmp_path / "a.wav", a)
    b = read_wav(tmp_path / "a.wav")
    assert b.rate == RATE and np.array_equal(a.samples, b.samples)
    assert not (tmp_path / "a.wav.part").exists()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_reads_stereo_of_any_width_as_mono(tmp_path: Path, width: int) -> None:
    left = tone(0.2, amp=10000)
    stereo = np.stack([left, left], axis=1).astype(np.int32) << (8 * width - 16) if width > 1 else None
    path = tmp_path / f"s{width}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(width)
        w.setframerate(22050)
        if width == 1:
            u8 = ((left.astype(np.int32) >> 8) + 128).astype(np.uint8)
            w.writeframes(np.stack([u8, u8], axis=1).tobytes())
        elif width == 3:
            v = stereo.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
            w.writeframes(v.tobytes())
        else:
            w.writeframes(stereo.astype({2: "<i2", 4: "<i4"}[width]).tobytes())
    a = read_wav(path)
    assert a.rate == 22050 and len(a.samples) == len(left)
    assert np.max(np.abs(a.samples.astype(int) - left.astype(int))) <= 256


def test_bad_files_raise_voice_error(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="no such file"):
        read_wav(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not a wav file at all")
    with pytest.raises(VoiceError, match="not a PCM WAV"):
        read_wav(tmp_path / "junk.wav")


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resample_keeps_duration_and_pitch(rate: int) -> None:
    a = Audio(tone(1.0, freq=700.0, rate=rate), rate)
    b = resample(a, RATE)
    assert b.rate == RATE
    assert abs(b.duration - 1.0) < 0.001
    assert abs(peak_hz(b) - 700.0) < 3
    assert resample(b, RATE) is b


def test_detector_finds_one_utterance_and_cuts_after_the_hangover() -> None:
    # 0.5 s room noise, 1 s "speech" with a 0.3 s pause inside, 2 s noise, then more speech that must not count
    signal = np.concatenate(
        [silence(0.5, noise=50), tone(0.5), silence(0.3, noise=50), tone(0.5), silence(2.0, noise=50), tone(1.0)]
    )
    got = detect_utterance(Audio(signal, RATE), hangover=0.8)
    assert got is not None
    # both halves (the pause is shorter than the hangover), pre-roll, and the hangover; not the later speech
    assert 1.3 + 0.8 - 0.1 <= got.duration <= 1.3 + 0.8 + 0.3 + 0.15
    frames = got.samples[: len(got.samples) // 480 * 480].reshape(-1, 480).astype(np.float64)
    loud_seconds = (np.sqrt((frames**2).mean(axis=1)) > 3000).sum() * 0.03
    assert loud_seconds == pytest.approx(1.0, abs=0.1)


def test_a_pause_longer_than_the_hangover_ends_the_utterance() -> None:
    signal = np.concatenate([silence(0.3), tone(0.4), silence(0.6), tone(0.4), silence(1)])
    got = detect_utterance(Audio(signal, RATE), hangover=0.5)
    assert got is not None and got.duration < 0.3 + 0.4 + 0.6 + 0.1


def test_steady_noise_and_silence_are_not_speech() -> None:
    assert detect_utterance(Audio(silence(3.0), RATE)) is None
    hum = (tone(3.0, freq=100, amp=250) + silence(3.0, noise=60)).astype(np.int16)
    assert detect_utterance(Audio(hum, RATE)) is None


def test_detector_rises_above_a_loud_noise_floor() -> None:
    fan = silence(1.0, noise=900)  # louder than min_rms: the floor must adapt, not trigger
    signal = np.concatenate([fan, (tone(0.6, amp=9000) + silence(0.6, noise=900)).astype(np.int16), fan, fan])
    det = EndOfSpeechDetector(hangover=0.5, calibration=0.3)
    ended_at = None
    for i in range(0, len(signal), 480):
        if det.push(signal[i : i + 480]):
            ended_at = i / RATE
            break
    assert det.in_speech and ended_at is not None
    assert 1.0 + 0.6 + 0.4 <= ended_at <= 1.0 + 0.6 + 0.7


def test_audio_helpers() -> None:
    a = Audio(tone(1.0, amp=1000), RATE)
    assert a.rms() == pytest.approx(1000 / np.sqrt(2), rel=0.01)
    assert Audio(np.zeros(0, dtype=np.int16), RATE).rms() == 0.0
    p = a.padded(0.25)
    assert p.duration == pytest.approx(1.5) and p.samples[:100].max() == 0
    d = p.dithered(30.0)
    assert 10 < Audio(d.samples[:4000], RATE).rms() < 60
    assert a.slice(0.25, 0.5).duration == pytest.approx(0.25)
