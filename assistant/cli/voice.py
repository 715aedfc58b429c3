"""`assistant voice`: talk to the running daemon (microphone, or --input FILE.wav) and hear its answers."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial
from typing import TYPE_CHECKING

from assistant.config import VoiceSettings, load_settings

if TYPE_CHECKING:
    from assistant.voice.client import VoiceAssistant

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "voice",
        help="voice front end: listen, transcribe, ask the daemon, speak the answer",
        description="Talk to the running daemon. Without --input it listens on the microphone: hands-free "
        "(each pause ends an utterance), with --push-to-talk (press Enter, then speak), or with --wake-word.",
    )
    p.add_argument("--input", metavar="FILE.wav", help="transcribe this WAV file instead of the microphone")
    p.add_argument("--output", metavar="FILE.wav", help="write the spoken answer here instead of playing it")
    p.add_argument("--text", help="skip speech-to-text: send this text and speak the answer")
    p.add_argument("--url", help="the daemon (default: voice.daemon_url, else http://server.host:server.port)")
    p.add_argument("--token", help="API token (default: server.api_token)")
    p.add_argument("--mute", action="store_true", help="do not speak notifications")
    p.add_argument("--push-to-talk", action="store_true", help="press Enter before each utterance")
    p.add_argument("--wake-word", help="hands-free, but only utterances that start with this word")
    p.add_argument("--transcribe-only", action="store_true", help="print what was heard; do not ask the daemon")
    p.add_argument("--device", help="microphone (name or index; see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.set_defaults(func=run)


def _device(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def run(args: argparse.Namespace) -> int:
    from assistant.client.daemon import DaemonClient
    from assistant.voice import audio
    from assistant.voice.client import VoiceAssistant
    from assistant.voice.phrases import skill_phrases
    from assistant.voice.stt import build_stt
    from assistant.voice.tts import build_tts

    if args.list_devices:
        print(audio.list_devices())
        return 0
    settings = load_settings(args.config)
    voice = settings.voice
    if args.wake_word:
        voice = voice.model_copy(update={"wake_word": args.wake_word})
    # --url, else voice.daemon_url, else server.host:port
    url = args.url or voice.daemon_url
    daemon = DaemonClient.from_settings(settings, url=url, token=args.token, timeout=voice.timeout)
    skills = [] if args.transcribe_only else daemon.skills()
    stt = build_stt(voice, skill_phrases(skills))
    tts = build_tts(voice)
    if args.output:
        speaker = partial(audio.write_wav, args.output)
    else:
        speaker = partial(audio.play, device=_device(voice.output_device))
    va = VoiceAssistant(
        stt, tts, daemon, speaker, out=sys.stdout, skills=skills, max_tokens=voice.answer_max_tokens
    )
    try:
        if args.text is not None:
            va.say(va.answer_text(args.text))
            return 0
        if args.input:
            heard = audio.detect_utterance(audio.resample(audio.read_wav(args.input)), hangover=voice.hangover)
            if args.transcribe_only:
                t = stt.transcribe(heard) if heard is not None else None
                print(f"you: {t.text}   [{t.source}]" if t else "you: (nothing recognised)")
                return 0 if t else 1
            if heard is None:
                print("you: (no speech in the file)")
                return 1
            return 0 if va.turn(heard).transcript else 1
        return _listen(args, va, voice)
    finally:
        va.close()
        daemon.close()


def _listen(args: argparse.Namespace, va: VoiceAssistant, voice: VoiceSettings) -> int:
    from assistant.core.errors import AssistantError
    from assistant.voice import audio

    if not (args.mute or voice.mute):
        va.start_notifications()
    mode = "push-to-talk: press Enter, then speak" if args.push_to_talk else "listening; Ctrl-C to quit"
    if voice.wake_word:
        mode += f" (say {voice.wake_word!r} first)"
    print(mode, flush=True)
    while True:
        if args.push_to_talk and sys.stdin.readline() == "":
            return 0
        detector = audio.EndOfSpeechDetector(hangover=voice.hangover, calibration=0.3)
        heard = audio.record_utterance(
            device=_device(args.device or voice.input_device),
            max_seconds=voice.max_seconds,
            detector=detector,
        )
        if heard is None:
            continue
        if args.transcribe_only:
            t = va.stt.transcribe(heard)
            print(f"you: {t.text}   [{t.source}]" if t else "you: (nothing recognised)", flush=True)
            continue
        try:
            va.turn(heard)
        except AssistantError as exc:  # one failed turn (daemon busy, engine error) does not end the session
            print(f"assistant: (error: {exc.message})", file=sys.stderr, flush=True)
