"""Audio as 16-bit mono samples: WAV read/write, resampling, end-of-speech detection, microphone and speaker.

``sounddevice`` (PortAudio; Debian ``libportaudio2``) is imported only by the functions that use a device, so
files can be transcribed and written on a machine without sound hardware.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from assistant.core.errors import AssistantError

STT_RATE = 16_000  # what pocketsphinx's en-US model (and Vosk, whisper.cpp) expect


class VoiceError(AssistantError):
    """Audio that cannot be read, a missing engine or device: something the user can fix."""

    type = "voice_error"


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit PCM samples at ``rate`` Hz."""

    samples: np.ndarray  # int16, 1-D
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def rms(self) -> float:
        """Root-mean-square level, in 16-bit sample units (0 for silence, ~3000 for normal speech)."""
        if len(self.samples) == 0:
            return 0.0
        return float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2)))

    def pcm(self) -> bytes:
        return self.samples.astype("<i2").tobytes()

    def padded(self, seconds: float) -> Audio:
        """Silence on both sides: recognisers need some before the first word to settle their noise estimate."""
        pad = np.zeros(int(self.rate * seconds), dtype=np.int16)
        return Audio(np.concatenate([pad, self.samples, pad]), self.rate)

    def dithered(self, level: float = 3.0, seed: int = 0) -> Audio:
        """Faint noise added: digital silence (exact zeros) upsets recognisers' energy and noise estimates."""
        noise = np.random.default_rng(seed).normal(0.0, level, len(self.samples))
        return Audio(_to_int16(self.samples.astype(np.float64) + noise), self.rate)

    def slice(self, start: float, end: float | None = None) -> Audio:
        a = int(start * self.rate)
        b = len(self.samples) if end is None else int(end * self.rate)
        return Audio(self.samples[a:b], self.rate)


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def read_wav(path: str | Path) -> Audio:
    """Read a PCM WAV file (8, 16, 24 or 32 bit, any channels) as mono 16-bit audio at its own rate."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except FileNotFoundError:
        raise VoiceError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise VoiceError(f"{path}: not a PCM WAV file ({exc})") from None
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / 256.0).astype(np.float64)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    else:
        raise VoiceError(f"{path}: unsupported sample width {width} bytes")
    usable = len(x) - len(x) % channels
    if channels > 1:
        x = x[:usable].reshape(-1, channels).mean(axis=1)
    return Audio(_to_int16(x), rate)


def write_wav(path: str | Path, audio: Audio) -> None:
    """Write mono 16-bit PCM; the file appears whole (written beside it, then renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio.rate)
        w.writeframes(audio.pcm())
    tmp.replace(path)


def resample(audio: Audio, rate: int = STT_RATE) -> Audio:
    """Polyphase resampling (scipy) to ``rate`` Hz; a no-op when the rate already matches."""
    if audio.rate == rate:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(audio.rate, rate)
    y = resample_poly(audio.samples.astype(np.float64), rate // g, audio.rate // g)
    return Audio(_to_int16(y), rate)


def frames(audio: Audio, frame_seconds: float = 0.03) -> Iterable[np.ndarray]:
    n = max(1, int(audio.rate * frame_seconds))
    for i in range(0, len(audio.samples), n):
        yield audio.samples[i : i + n]


class EndOfSpeechDetector:
    """Energy-based voice activity detection with a hangover.

    Speech starts when ``start_frames`` frames in a row are louder than the noise floor by ``ratio`` (and
    above ``min_rms``); it ends after ``hangover`` seconds below that level, so short pauses between words
    do not cut an utterance. The noise floor follows the quietest recent frames, so a fan or a hum raises
    the bar instead of counting as speech; ``calibration`` seconds at the start (a microphone just opened)
    only measure that floor. Feed frames with :meth:`push`; it returns True once speech ended.
    """

    def __init__(
        self,
        rate: int = STT_RATE,
        frame_seconds: float = 0.03,
        hangover: float = 0.8,
        ratio: float = 3.0,
        min_rms: float = 300.0,
        start_frames: int = 3,
        pre_roll: float = 0.3,
        calibration: float = 0.0,
    ) -> None:
        self.rate = rate
        self.frame_seconds = frame_seconds
        self.hangover_frames = max(1, round(hangover / frame_seconds))
        self.ratio = ratio
        self.min_rms = min_rms
        self.start_frames = start_frames
        self.pre_roll_frames = max(0, round(pre_roll / frame_seconds))
        self.noise = min_rms / ratio
        self._calibration_left = round(calibration / frame_seconds)
        self._calibration_levels: list[float] = []
        self.in_speech = False
        self.ended = False
        self._loud_run = 0
        self._quiet_run = 0
        self._pending: list[np.ndarray] = []  # frames before speech started (pre-roll)
        self._speech: list[np.ndarray] = []

    def _threshold(self) -> float:
        return max(self.min_rms, self.noise * self.ratio)

    def push(self, frame: np.ndarray) -> bool:
        if self.ended:
            return True
        level = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) if len(frame) else 0.0
        if self._calibration_left > 0:
            self._calibration_left -= 1
            self._calibration_levels.append(level)
            self.noise = float(np.median(self._calibration_levels))
            self._pending = [*self._pending[-self.pre_roll_frames :], frame] if self.pre_roll_frames else []
            return False
        loud = level >= self._threshold()
        if not self.in_speech:
            if not loud:  # track the noise floor only outside speech
                self.noise = level if level < self.noise else 0.95 * self.noise + 0.05 * level
            self._pending.append(frame)
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run >= self.start_frames:
                self.in_speech = True
                keep = self.pre_roll_frames + self._loud_run
                self._speech = self._pending[-keep:]
                self._pending = []
            else:
                del self._pending[: -(self.pre_roll_frames + self.start_frames)]
            return False
        self._speech.append(frame)
        self._quiet_run = 0 if loud else self._quiet_run + 1
        if self._quiet_run >= self.hangover_frames:
            self.ended = True
        return self.ended

    def utterance(self) -> Audio:
        """The speech heard so far (with pre-roll), or empty audio when none started."""
        data = np.concatenate(self._speech) if self._speech else np.zeros(0, dtype=np.int16)
        return Audio(data.astype(np.int16), self.rate)


def detect_utterance(audio: Audio, **detector_kwargs: float) -> Audio | None:
    """The first utterance in ``audio`` (16 kHz), cut at its end of speech; None when there is no speech."""
    det = EndOfSpeechDetector(rate=audio.rate, **detector_kwargs)  # type: ignore[arg-type]
    for frame in frames(audio, det.frame_seconds):
        if det.push(frame):
            break
    return det.utterance() if det.in_speech else None


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise VoiceError(
            f"no audio device support ({exc}); install libportaudio2 and sounddevice, or use --input/--output"
        ) from None
    return sounddevice


def list_devices() -> str:
    return str(_sounddevice().query_devices())


def record_utterance(
    *,
    device: int | str | None = None,
    max_seconds: float = 15.0,
    detector: EndOfSpeechDetector | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Audio | None:
    """Listen on the microphone until end of speech (or ``max_seconds`` of speech); None if stopped first."""
    sd = _sounddevice()
    det = detector or EndOfSpeechDetector(calibration=0.3)
    block = int(det.rate * det.frame_seconds)
    limit = int(max_seconds / det.frame_seconds)
    heard = 0
    try:
        with sd.InputStream(samplerate=det.rate, channels=1, dtype="int16", blocksize=block, device=device) as s:
            while not should_stop():
                data, _overflowed = s.read(block)
                if det.push(np.asarray(data).reshape(-1)):
                    break
                if det.in_speech:
                    heard += 1
                    if heard >= limit:
                        break
    except sd.PortAudioError as exc:
        raise VoiceError(f"microphone: {exc} (is there an input device? see --list-devices)") from None
    return det.utterance() if det.in_speech else None


def play(audio: Audio, *, device: int | str | None = None) -> None:
    sd = _sounddevice()
    try:
        sd.play(audio.samples, audio.rate, device=device, blocking=True)
    except sd.PortAudioError as exc:
        raise VoiceError(f"speaker: {exc}") from None
