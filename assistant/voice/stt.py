"""Speech-to-text engines behind one small protocol; the default is PocketSphinx with a command grammar.

``PocketSphinxSTT`` decodes an utterance twice at most: first against a JSGF grammar of command phrases
(:mod:`assistant.voice.phrases`), accepted only when the decoder reaches the end of a whole phrase; else with
the general en-US language model for free dictation. Other engines plug in by config (``voice.stt``), which
names an ``assistant.speech`` plugin ``stt.NAME`` (``SpeechToTextFactory``): the built-ins are
``pocketsphinx`` and ``command`` (an external program run on a WAV file, e.g. whisper.cpp). A
``package.module:Class`` still loads a class taking the VoiceSettings.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from assistant.core import plugins
from assistant.voice.audio import STT_RATE, Audio, VoiceError, resample, write_wav
from assistant.voice.phrases import (
    DEFAULT_PHRASES,
    installed_skills,
    normalize,
    skill_phrases,
    strip_optional,
    to_jsgf,
    unique_phrases,
)

if TYPE_CHECKING:
    from assistant.config import VoiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transcript:
    text: str
    source: Literal["grammar", "dictation", "engine", "none"]

    def __bool__(self) -> bool:
        return bool(self.text)


class SpeechToText(Protocol):
    def transcribe(self, audio: Audio) -> Transcript: ...


class SpeechToTextFactory(Protocol):
    """What an ``assistant.speech`` entry point named ``stt.NAME`` names (``voice.stt = "NAME"``): called with
    the ``[voice]`` section and the command phrases of the daemon's skills (empty when no daemon listed
    them), returning the engine. Loads its model lazily; a missing setting raises VoiceError."""

    def __call__(self, voice: VoiceSettings, extra_phrases: list[str], /) -> SpeechToText: ...


class PocketSphinxSTT:
    """PocketSphinx (pip ``pocketsphinx``, which carries the en-US acoustic model, dictionary and LM)."""

    GRAMMAR = "commands"
    PAD_SECONDS = 0.3
    # Faint noise under the whole utterance. Measured on espeak-ng speech (benchmarks/bench_voice_wer.py):
    # without it 15 of 72 spoken commands came out exact, with it 69 of 72; free-question WER 70% -> 40%.
    DITHER_RMS = 100.0
    PHONES = "phones"
    UNWOKEN = "commands-without-wake-word"
    # A phrase is said in well under a second a word; longer audio is not that phrase, whatever the grammar
    # fits onto it (a 44 s reading of Dickens came out as "what's the time": benchmarks/bench_voice_wer.py).
    SECONDS_PER_WORD = 1.0
    SECONDS_SPARE = 2.0


    def __init__(
        self,
        phrases: list[str] | None = None,
        *,
        wake_word: str | None = None,
        dictation: bool = True,
        model_dir: str | None = None,
        grammar_margin: float = 0.0,
    ) -> None:
        self.wanted = unique_phrases(phrases if phrases is not None else DEFAULT_PHRASES)
        self.wake_word = wake_word
        self.dictation = dictation
        self.model_dir = model_dir
        self.grammar_margin = grammar_margin
        self.phrases: list[str] = []  # the wanted phrases whose words are all in the dictionary
        self._decoder: Any = None
        self._lm_search: str = ""

    def _load(self) -> Any:
        if self._decoder is not None:
            return self._decoder
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise VoiceError(f"pocketsphinx is not installed ({exc}); pip install pocketsphinx") from None
        kwargs: dict[str, Any] = {"loglevel": "FATAL"}
        from pocketsphinx import get_model_path

        base = Path(self.model_dir or get_model_path("en-us"))
        kwargs.update(hmm=str(base / "en-us"), lm=str(base / "en-us.lm.bin"), dict=str(base / "cmudict-en-us.dict"))
        decoder = Decoder(**kwargs)
        self._lm_search = decoder.current_search()
        decoder.add_allphone_file(self.PHONES, str(base / "en-us-phone.lm.bin"))
        missing: set[str] = set()
        for phrase in self.wanted:
            oov = [w for w in phrase.split() if decoder.lookup_word(w) is None]
            if oov:
                missing.update(oov)
            else:
                self.phrases.append(phrase)
        if missing:
            log.warning("left out of the voice grammar, not in the dictionary: %s", ", ".join(sorted(missing)))
        if self.wake_word and any(decoder.lookup_word(w) is None for w in normalize(self.wake_word).split()):
            raise VoiceError(f"wake word {self.wake_word!r} is not in the speech dictionary; choose another")
        if self.phrases:
            decoder.add_jsgf_string(self.GRAMMAR, to_jsgf(self.phrases, self.wake_word))
            if self.wake_word:
                decoder.add_jsgf_string(self.UNWOKEN, to_jsgf(self.phrases))
        self._decoder = decoder
        return decoder

    def _prepare(self, audio: Audio) -> bytes:
        return resample(audio, STT_RATE).padded(self.PAD_SECONDS).dithered(self.DITHER_RMS).pcm()

    def _decode_scored(self, search: str, pcm: bytes) -> tuple[str, float]:
        """(hypothesis, path score in log units per frame); ("", -inf) when the search found no path."""
        d = self._decoder
        d.activate_search(search)
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return "", float("-inf")
        return hyp.hypstr, d.get_logmath().log(hyp.best_score) / max(1, d.n_frames())

    def _decode(self, search: str, pcm: bytes) -> str:
        return self._decode_scored(search, pcm)[0]

    def match_grammar(self, audio: Audio) -> str | None:
        """The command phrase heard, or None when none fits.

        Accepted only when the grammar search ends on a whole phrase AND that path scores at least
        ``grammar_margin`` per frame better than a free phone loop over the same audio: a grammar forces
        any speech onto some phrase, so out-of-grammar speech ("how are you doing today") scores far below
        the phone loop (about -5 to -14 per frame on espeak-ng speech) while real commands score above it
        (+2 to +10).
        """
        self._load()
        if not self.phrases:
            return None
        pcm = self._prepare(audio)
        hyp, score = self._decode_scored(self.GRAMMAR, pcm)
        command = strip_optional(hyp, self.wake_word)
        if command not in self.phrases:
            return None
        if self.too_long(audio.duration, hyp):
            return None
        _, phone_score = self._decode_scored(self.PHONES, pcm)
        margin = score - phone_score
        log.debug("grammar %r margin %.1f per frame", command, margin)
        if margin < self.grammar_margin:
            return None
        if self.wake_word:
            # The grammar forces the wake word onto whatever comes first; it was said only if the same
            # commands without it fit worse (by +10 or more per frame when said, -11 or less when not).
            _, unwoken = self._decode_scored(self.UNWOKEN, pcm)
            if score < unwoken:
                return None
        return command

    @classmethod
    def too_long(cls, seconds: float, phrase: str) -> bool:
        """Whether ``seconds`` of audio are too long to be only ``phrase`` said."""
        return seconds > cls.SECONDS_SPARE + cls.SECONDS_PER_WORD * len(phrase.split())

    def transcribe(self, audio: Audio) -> Transcript:
        self._load()
        if len(audio.samples) == 0:
            return Transcript("", "none")
        command = self.match_grammar(audio)
        if command is not None:
            return Transcript(command, "grammar")
        if not self.dictation:
            return Transcript("", "none")
        pcm = self._prepare(audio)
        text = normalize(self._decode(self._lm_search, pcm))
        if self.wake_word:  # speech not addressed to the assistant is ignored
            wake = normalize(self.wake_word)
            text = strip_optional(text, wake) if (text + " ").startswith(wake + " ") else ""
        return Transcript(text, "dictation" if text else "none")


class CommandSTT:
    """Any speech-to-text program that reads a 16 kHz mono WAV and prints the text, e.g. whisper.cpp:
    ``whisper-cli -m /opt/models/ggml-base.en.bin -f {wav} -nt -np``. ``{wav}`` is replaced by the file."""

    def __init__(self, command: str, timeout: float = 120.0) -> None:
        if "{wav}" not in command:
            raise VoiceError("voice.stt_command must contain {wav}, the place of the audio file")
        self.argv = shlex.split(command)
        self.timeout = timeout

    def transcribe(self, audio: Audio) -> Transcript:
        with tempfile.TemporaryDirectory(prefix="assistant-stt-") as tmp:
            wav = Path(tmp) / "utterance.wav"
            write_wav(wav, resample(audio, STT_RATE))
            argv = [a.replace("{wav}", str(wav)) for a in self.argv]
            try:
                done = subprocess.run(argv, capture_output=True, timeout=self.timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise VoiceError(f"speech-to-text command {argv[0]!r} failed: {exc}") from None
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise VoiceError(f"speech-to-text command exited with {done.returncode}: {err[0]}")
        text = " ".join(done.stdout.decode(errors="replace").split())
        return Transcript(text, "engine" if text else "none")


def load_plugin(spec: str, what: str) -> type:
    """``package.module:Class`` -> the class."""
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        plugin: type = getattr(importlib.import_module(module_name), attr)
        return plugin
    except (ImportError, AttributeError) as exc:
        raise VoiceError(f"voice.{what} = {spec!r}: cannot load it ({exc})") from None


def speech_factory(kind: Literal["stt", "tts"], name: str) -> object:
    """The factory of the ``assistant.speech`` plugin ``KIND.NAME`` (``voice.stt``/``voice.tts`` = NAME);
    VoiceError naming the installed engines of that kind when there is none or it fails to load."""
    prefix = f"{kind}."
    known = [n.removeprefix(prefix) for n in plugins.names(plugins.SPEECH) if n.startswith(prefix)]
    if name not in known:
        raise VoiceError(f"voice.{kind} = {name!r}: choose {', '.join(known)}, or package.module:Class")
    try:
        return plugins.load_factory(plugins.SPEECH, prefix + name, setting=f"voice.{kind}")
    except plugins.PluginError as exc:
        raise VoiceError(exc.message) from None


def pocketsphinx_stt(voice: VoiceSettings, extra_phrases: list[str]) -> PocketSphinxSTT:
    """The ``stt.pocketsphinx`` plugin (the default): the built-in phrases, ``voice.phrases`` and the skills'
    phrases (the daemon's; without them, those of the skills installed here) as the command grammar."""
    extra = extra_phrases or skill_phrases(installed_skills())
    phrases = [*DEFAULT_PHRASES, *voice.phrases, *extra]
    return PocketSphinxSTT(phrases, wake_word=voice.wake_word, dictation=voice.dictation)


def command_stt(voice: VoiceSettings, extra_phrases: list[str]) -> CommandSTT:
    """The ``stt.command`` plugin: ``voice.stt_command`` run on each utterance's WAV file."""
    if not voice.stt_command:
        raise VoiceError("voice.stt = 'command' needs voice.stt_command")
    return CommandSTT(voice.stt_command)


def build_stt(voice: VoiceSettings, extra_phrases: list[str] | None = None) -> SpeechToText:
    """The engine named by ``voice.stt``: an installed ``stt.NAME`` speech plugin, or package.module:Class."""
    name = voice.stt
    if ":" in name:
        engine: SpeechToText = load_plugin(name, "stt")(voice)
        return engine
    factory = cast(SpeechToTextFactory, speech_factory("stt", name))
    return factory(voice, list(extra_phrases or []))
