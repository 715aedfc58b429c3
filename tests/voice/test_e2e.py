"""End to end, no microphone: espeak-ng asks aloud into a WAV, `assistant voice --input/--output` hears it,
asks a real daemon (`assistant serve` on the bundled model), and writes the spoken answer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.voice.audio import read_wav
from tests.daemon import start_daemon
from tests.voice_support import need_pocketsphinx, speak_to_wav

pytestmark = pytest.mark.slow

CONFIG = """
[model]
bundled = "smollm2"
[memory]
enabled = false
[scheduler]
enabled = false
[notify]
desktop = false
[voice]
answer_max_tokens = 40
"""


def voice_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    return subprocess.run(
        [sys.executable, "-m", "assistant", "--config", str(config), "voice", *args],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )


def test_spoken_question_to_spoken_answer_on_the_bundled_model(tmp_path: Path) -> None:
    need_pocketsphinx()
    question = speak_to_wav("tell me a joke", tmp_path / "q.wav")
    clock_question = speak_to_wav("what time is it", tmp_path / "t.wav", voice="en-gb", speed=190)
    with start_daemon(tmp_path / "daemon", config_toml=CONFIG) as daemon:
        config = tmp_path / "daemon" / "config.toml"
        answer_wav = tmp_path / "a.wav"
        done = voice_cli(config, "--input", str(question), "--output", str(answer_wav), "--url", daemon.url)
        assert done.returncode == 0, done.stdout + done.stderr + daemon.log()[-3000:]
        assert "you: tell me a joke   [grammar]" in done.stdout
        answer = re.search(r"^assistant: (.*)\Z", done.stdout, re.MULTILINE | re.DOTALL)  # may span lines
        assert answer and answer.group(1).strip(), done.stdout
        text = answer.group(1)
        words, chars = len(text.split()), len(text)
        spoken = read_wav(answer_wav)
        # espeak-ng at 160 words a minute: about 0.375 s a word (0.07 s a character); numbers read out take
        # longer ("2026" is four words), hence the loose upper bound per character
        assert 0.3 * words * 0.375 <= spoken.duration <= 0.25 * chars + 2.0, (text, spoken.duration)
        assert spoken.duration >= 0.4 and spoken.rms() > 500

        time_wav = tmp_path / "time.wav"
        done = voice_cli(config, "--input", str(clock_question), "--output", str(time_wav), "--url", daemon.url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "you: what time is it   [grammar -> /time]" in done.stdout
        assert re.search(r"^assistant: .*\d", done.stdout, re.MULTILINE), done.stdout  # the time skill
        assert read_wav(time_wav).duration > 1.0
