"""Word error rate of the speech-to-text engines side by side, on espeak-ng speech and on real recordings.

    .venv/bin/python benchmarks/bench_voice_wer.py [--voices en-us,en-gb,en-us+f3] [--speeds 140,175,210]
        [--engines pocketsphinx,whisper,hybrid,...] [--real-dir DIR] [--limit N] [-v]

Every engine decodes the same audio, in a process of its own (so its peak memory is its own), one thread:
  pocketsphinx  stt.pocketsphinx as shipped: command grammar first, the general language model as fallback
  lm-only       PocketSphinx's general language model alone (the "what does look up the globetrotters" one)
  whisper       stt.whisper: Whisper tiny.en (CTranslate2, int8) on every utterance, in its 30 s window
  whisper-short the same with the window cut to the audio and 1 s (faster; repeats itself, drops words)
  hybrid        stt.hybrid: PocketSphinx's command grammar first, Whisper tiny.en for the rest
Speech: COMMANDS (phrases of the grammar) and FREE (questions and requests outside it), each said by espeak-ng
in every voice at every speed; and, with --real-dir, the recordings named in REAL found in that directory
(the moonshine-voice wheel ships them, see docs/voice.md: ``pip download --no-deps moonshine-voice==0.1.5``
and unzip its ``moonshine_voice/assets``). Printed per engine: WER (word edits / reference words) and
exact sentences per set, the real-time factor (decode CPU seconds / audio seconds; one thread, so it holds on a
busy machine) and the peak resident memory of the engine's process.
Digits are spelled out on both sides before scoring ("10" = "ten").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COMMANDS = [
    "what time is it",
    "read me the headlines",
    "give me the digest",
    "tell me a seuss story",
    "what day is it",
    "tell me a joke",
    "what can you do",
    "read my notifications",
    "set a timer for ten minutes",
]
FREE = [
    "how are you doing today",
    "what is the capital of france",
    "remember that my car is on level three",
    "who wrote hamlet",
    "remind me to call my mother at six",
    "what should i cook for dinner tonight",
    "how far away is the moon",
    "add milk and eggs to my shopping list",
    "summarize the news about the election",
    "what is the weather like tomorrow morning",
    "tell me something interesting about octopuses",
]
# Recordings shipped in the moonshine-voice 0.1.5 wheel (moonshine_voice/assets; beckett.wav is also in
# useful-moonshine-onnx); the references are the texts read: Beckett's line, and the first paragraph of
# Dickens' A Tale of Two Cities (public domain).
REAL = {
    "beckett.wav": "ever tried ever failed no matter try again fail again fail better",
    "two_cities.wav": (
        "it was the best of times it was the worst of times it was the age of wisdom it was the age of "
        "foolishness it was the epoch of belief it was the epoch of incredulity it was the season of light it "
        "was the season of darkness it was the spring of hope it was the winter of despair we had everything "
        "before us we had nothing before us we were all going direct to heaven we were all going direct the "
        "other way in short the period was so far like the present period that some of its noisiest "
        "authorities insisted on its being received for good or for evil in the superlative degree of "
        "comparison only"
    ),
}
ENGINES = ["pocketsphinx", "lm-only", "whisper", "whisper-short", "hybrid"]


def word_edits(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def words(text: str) -> list[str]:
    from assistant.voice.phrases import normalize
    from assistant.voice.stt_whisper import spell_numbers

    return normalize(spell_numbers(text)).split()


def make_engine(name: str) -> Any:
    """name -> a function Audio -> text, built as the plugins build them, one thread."""
    from assistant.config import VoiceSettings
    from assistant.voice.stt import pocketsphinx_stt
    from assistant.voice.stt_whisper import HybridSTT, WhisperSTT

    sphinx = pocketsphinx_stt(VoiceSettings(), [])  # the built-in phrases and the installed skills' phrases
    if name == "pocketsphinx":
        return lambda a: sphinx.transcribe(a).text
    if name == "lm-only":
        def lm_only(audio: Any) -> str:
            sphinx._load()
            return str(sphinx._decode(sphinx._lm_search, sphinx._prepare(audio)))
        return lm_only
    if name in ("whisper", "whisper-short"):
        whisper = WhisperSTT(threads=1, pad_30s=name == "whisper")
        return lambda a: whisper.transcribe(a).text
    if name == "hybrid":
        hybrid = HybridSTT(sphinx, WhisperSTT(threads=1))
        return lambda a: hybrid.transcribe(a).text
    raise SystemExit(f"unknown engine {name!r}: choose from {', '.join(ENGINES)}")


def run_engine(name: str, listing: Path) -> dict[str, Any]:
    """In the child: decode every utterance of the listing; tallies, timings, peak memory, misses."""
    from assistant.voice.audio import read_wav

    items = json.loads(listing.read_text())
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = make_engine(name)
    fn(read_wav(items[0]["wav"]))  # load the model outside the timings (its memory stays in the peak)
    tally: dict[str, list[float]] = {}  # set -> [edits, ref words, exact, n, decode s, audio s]
    misses = []
    for item in items:
        audio = read_wav(item["wav"])
        t0 = time.process_time()  # CPU seconds: one thread each, so a busy machine does not skew the ratio
        got = fn(audio)
        dt = time.process_time() - t0
        ref, hyp = words(item["text"]), words(got)
        t = tally.setdefault(item["set"], [0, 0, 0, 0, 0.0, 0.0])
        edits = word_edits(ref, hyp)
        t[0] += edits
        t[1] += len(ref)
        t[2] += edits == 0
        t[3] += 1
        t[4] += dt
        t[5] += audio.duration
        if edits:
            misses.append(f"{item['label']:14} {item['text'][:60]!r} -> {' '.join(hyp)[:80]!r}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"tally": tally, "peak_mb": peak / 1024, "base_mb": rss0 / 1024, "misses": misses}


def speak_all(espeak: str, voices: list[str], speeds: list[int], limit: int | None, tmp: Path) -> list[dict[str, Any]]:
    items = []
    for subset, sentences in (("commands", COMMANDS), ("free", FREE)):
        for i, text in enumerate(sentences[:limit]):
            for voice in voices:
                for speed in speeds:
                    wav = tmp / f"{subset}-{i}-{voice}-{speed}.wav"
                    subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
                    items.append({"set": subset, "text": text, "wav": str(wav), "label": f"{voice} {speed}"})
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", default="en-us,en-gb,en-us+f3")
    ap.add_argument("--speeds", default="140,175,210")
    ap.add_argument("--engines", default="pocketsphinx,whisper,whisper-short,hybrid")
    ap.add_argument("--jobs", type=int, default=1, help="engines decoding at the same time (each one thread)")
    ap.add_argument("--real-dir", type=Path, help="a directory holding the REAL recordings")
    ap.add_argument("--limit", type=int, help="only the first N sentences of each set (a quick look)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every misrecognition")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "LISTING"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_engine(args.child[0], Path(args.child[1]))))
        return 0
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("espeak-ng is not installed (sudo apt-get install espeak-ng)", file=sys.stderr)
        return 2
    voices, speeds = args.voices.split(","), [int(s) for s in args.speeds.split(",")]
    engines = args.engines.split(",")
    sets = ["commands", "free"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        items = speak_all(espeak, voices, speeds, args.limit, tmp)
        if args.real_dir:
            found = [f for f in REAL if (args.real_dir / f).is_file()]
            if not found:
                print(f"none of {', '.join(REAL)} in {args.real_dir}", file=sys.stderr)
                return 2
            items += [{"set": "real", "text": REAL[f], "wav": str(args.real_dir / f), "label": f} for f in found]
            sets.append("real")
        listing = tmp / "listing.json"
        listing.write_text(json.dumps(items))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        from concurrent.futures import ThreadPoolExecutor

        def child(name: str) -> dict[str, Any]:
            cmd = [sys.executable, __file__, "--child", name, str(listing)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            return dict(json.loads(done.stdout.strip().splitlines()[-1]))

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = dict(zip(engines, pool.map(child, engines), strict=True))
    count = {s: sum(1 for i in items if i["set"] == s) for s in sets}
    print(f"{len(items)} utterances: {count['commands']} commands + {count['free']} free (espeak-ng, voices "
          f"{voices} x speeds {speeds} wpm)" + (f" + {count['real']} real recordings" if "real" in count else ""))
    head = f"{'engine':13}" + "".join(f" {s + ' WER':>13} {'exact':>8}" for s in sets)
    print(head + f" {'RTF':>6} {'peak MB':>8}")
    for name in engines:
        r = results[name]
        row = f"{name:13}"
        secs = audio = 0.0
        for s in sets:
            t = r["tally"].get(s, [0, 1, 0, 0, 0.0, 0.0])
            row += f" {t[0] / max(1, t[1]):13.1%} {int(t[2]):>3}/{int(t[3]):<4}"
            secs += t[4]
            audio += t[5]
        print(row + f" {secs / max(audio, 1e-9):6.3f} {r['peak_mb']:8.0f}")
    if args.verbose:
        for name in engines:
            print(f"\n{name}: {len(results[name]['misses'])} utterances with errors")
            for m in results[name]["misses"]:
                print("  " + m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
