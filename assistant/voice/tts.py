"""Text-to-speech engines behind one small protocol; the default is espeak-ng (Debian package ``espeak-ng``).

Other engines plug in by config (``voice.tts``), which names an ``assistant.speech`` plugin ``tts.NAME``
(``TextToSpeechFactory``): the built-ins are ``espeak-ng`` and ``command`` (any program that reads text on
stdin and writes a WAV file; Piper: ``piper --model en_US-lessac-medium.onnx --output_file {wav}``). A
``package.module:Class`` still loads a class taking the VoiceSettings.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from assistant.voice.audio import Audio, VoiceError, read_wav
from assistant.voice.stt import load_plugin, speech_factory

if TYPE_CHECKING:
    from assistant.config import VoiceSettings

MAX_SPOKEN_CHARS = 2_000


class TextToSpeech(Protocol):
    def synthesize(self, text: str) -> Audio: ...


class TextToSpeechFactory(Protocol):
    """What an ``assistant.speech`` entry point named ``tts.NAME`` names (``voice.tts = "NAME"``): called with
    the ``[voice]`` section, returning the engine. A missing setting raises VoiceError."""

    def __call__(self, voice: VoiceSettings, /) -> TextToSpeech: ...


def speakable(text: str, limit: int = MAX_SPOKEN_CHARS) -> str:
    """Text fit to be read aloud (:func:`assistant.voice.spoken.for_the_ear`: no Markdown, no URLs, numbers and
    times in words), one line, bounded length. Every engine gets its text through here."""
    from assistant.voice.spoken import for_the_ear

    text = for_the_ear(text)
    if len(text) > limit:
        cut = text[:limit]
        end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        text = cut[: end + 1] if end > limit // 2 else cut
    return text


def _run_to_wav(argv: list[str], text: str, wav: Path, timeout: float, what: str) -> Audio:
    try:
        done = subprocess.run(argv, input=text.encode(), capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VoiceError(f"{what} failed: {exc}") from None
    if done.returncode != 0 or not wav.exists():
        err = (done.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        raise VoiceError(f"{what} exited with {done.returncode}: {err}")
    return read_wav(wav)


class EspeakTTS:
    """``espeak-ng -v VOICE -s WPM -w out.wav`` with the text on stdin (never on the command line, so a text
    starting with '-' cannot turn into an option)."""

    def __init__(self, voice: str = "en-us", speed: int = 160, binary: str = "espeak-ng", timeout: float = 60) -> None:
        self.voice = voice
        self.speed = speed
        self.binary = binary
        self.timeout = timeout

    def synthesize(self, text: str) -> Audio:
        exe = shutil.which(self.binary)
        if exe is None:
            raise VoiceError(f"{self.binary} is not installed (sudo apt-get install espeak-ng)")
        with tempfile.TemporaryDirectory(prefix="assistant-tts-") as tmp:
            wav = Path(tmp) / "speech.wav"
            argv = [exe, "-v", self.voice, "-s", str(self.speed), "-w", str(wav), "--stdin"]
            return _run_to_wav(argv, speakable(text), wav, self.timeout, "espeak-ng")


class CommandTTS:
    """Any program that reads text on stdin and writes a WAV to ``{wav}`` (Piper, Mimic, a cloud CLI...)."""

    def __init__(self, command: str, timeout: float = 120.0) -> None:
        if "{wav}" not in command:
            raise VoiceError("voice.tts_command must contain {wav}, the place of the output file")
        self.argv = shlex.split(command)
        self.timeout = timeout

    def synthesize(self, text: str) -> Audio:
        with tempfile.TemporaryDirectory(prefix="assistant-tts-") as tmp:
            wav = Path(tmp) / "speech.wav"
            argv = [a.replace("{wav}", str(wav)) for a in self.argv]
            return _run_to_wav(argv, speakable(text), wav, self.timeout, f"text-to-speech command {argv[0]!r}")


def espeak_tts(voice: VoiceSettings) -> EspeakTTS:
    """The ``tts.espeak-ng`` plugin (the default): ``voice.espeak_voice`` at ``voice.espeak_speed``."""
    return EspeakTTS(voice.espeak_voice, voice.espeak_speed)


def command_tts(voice: VoiceSettings) -> CommandTTS:
    """The ``tts.command`` plugin: ``voice.tts_command`` reads the text and writes the WAV file."""
    if not voice.tts_command:
        raise VoiceError("voice.tts = 'command' needs voice.tts_command")
    return CommandTTS(voice.tts_command)


def build_tts(voice: VoiceSettings) -> TextToSpeech:
    """The engine named by ``voice.tts``: an installed ``tts.NAME`` speech plugin, or package.module:Class."""
    name = voice.tts
    if ":" in name:
        plugin: TextToSpeech = load_plugin(name, "tts")(voice)
        return plugin
    factory = cast(TextToSpeechFactory, speech_factory("tts", name))
    return factory(voice)
