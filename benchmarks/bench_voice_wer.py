"""Word error rate of the default speech-to-text on spoken commands (espeak-ng voices and speeds).

    .venv/bin/python benchmarks/bench_voice_wer.py [--voices en-us,en-gb,en-us+f3] [--speeds 140,175,210]

Prints, for each way of decoding, the WER (word edits / reference words) and sentence accuracy over
commands in the grammar and over free questions outside it:
  default    PocketSphinxSTT as shipped: grammar first, general language model as fallback
  lm-only    the general language model alone (what the issue measured before: "what time is it" -> "well i")
  no-dither  the default without the faint noise added under the audio
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.voice.audio import read_wav  # noqa: E402
from assistant.voice.phrases import DEFAULT_PHRASES  # noqa: E402
from assistant.voice.stt import PocketSphinxSTT, Transcript  # noqa: E402

COMMANDS = [
    "what time is it",
    "read me the headlines",
    "give me the digest",
    "tell me a seuss story",
    "what day is it",
    "tell me a joke",
    "what can you do",
    "read my notifications",
]
FREE = [
    "how are you doing today",
    "what is the capital of france",
    "remember that my car is on level three",
    "who wrote hamlet",
]


def word_edits(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", default="en-us,en-gb,en-us+f3")
    ap.add_argument("--speeds", default="140,175,210")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every misrecognition")
    args = ap.parse_args()
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("espeak-ng is not installed (sudo apt-get install espeak-ng)", file=sys.stderr)
        return 2
    default = PocketSphinxSTT(list(DEFAULT_PHRASES))
    no_dither = PocketSphinxSTT(list(DEFAULT_PHRASES))
    no_dither.DITHER_RMS = 0.0

    def lm_only(audio):  # noqa: ANN001, ANN202
        default._load()
        return Transcript(default._decode(default._lm_search, default._prepare(audio)), "dictation")

    engines = {"default": default.transcribe, "lm-only": lm_only, "no-dither": no_dither.transcribe}
    tally = {(e, s): [0, 0, 0, 0] for e in engines for s in ("commands", "free")}  # edits, words, right, n
    seconds = {e: 0.0 for e in engines}
    n_utts = 0
    voices, speeds = args.voices.split(","), [int(s) for s in args.speeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        for subset, sentences in (("commands", COMMANDS), ("free", FREE)):
            for text in sentences:
                for voice in voices:
                    for speed in speeds:
                        subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
                        audio = read_wav(wav)
                        n_utts += 1
                        for name, fn in engines.items():
                            t0 = time.perf_counter()
                            got = fn(audio).text
                            seconds[name] += time.perf_counter() - t0
                            t = tally[(name, subset)]
                            t[0] += word_edits(text.split(), got.split())
                            t[1] += len(text.split())
                            t[2] += got == text
                            t[3] += 1
                            if args.verbose and got != text:
                                print(f"  {name:9} {voice:9} {speed:3}  {text!r} -> {got!r}")
    print(f"{n_utts} utterances: {len(COMMANDS)} commands + {len(FREE)} free questions x voices {voices} "
          f"x speeds {speeds} wpm\n")
    print(f"{'decoder':10} {'commands WER':>13} {'exact':>9} {'free WER':>10} {'exact':>9} {'s/utt':>7}")
    for name in engines:
        c, f = tally[(name, "commands")], tally[(name, "free")]
        print(f"{name:10} {c[0] / c[1]:13.1%} {c[2]:>4}/{c[3]:<4} {f[0] / f[1]:10.1%} {f[2]:>4}/{f[3]:<4} "
              f"{seconds[name] / n_utts:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
