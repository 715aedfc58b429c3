"""What the chat recall (memory/recall.py: relevance floor, authority order, token budget) puts into prompts,
with the real memory (Chroma, FTS5, the ONNX MiniLM embedder):

    .venv/bin/python benchmarks/recall_loop.py locomo ../shared/data/locomo-dev --index /tmp/locomo-index
    .venv/bin/python benchmarks/recall_loop.py notes

``locomo``: every LoCoMo question through ``MemoryRecall.select`` within its conversation (as `assistant eval
retrieval --group-by conversation_id` searches), for the floor of before (any keyword match, or a cosine of
0.25) and the floor of now at several cosines. Reported: the share of a question's evidence turns that
reach the prompt (k 5, 512 tokens), the memories and tokens recalled per question; and for off-topic
questions (everyday questions below, asked of each conversation) the share that recall anything and the
tokens they cost. LoCoMo turns are what people said, so the floor must not lose evidence there.

``notes``: a notes scenario of this project's own. Ten notes; ten unrelated questions answered wrongly by a
scripted model; each note's question asked once and answered wrongly (stored as a chat turn, as the
daemon stores it), then asked again. For each policy (before: answers recalled as peers of the user's
words; now: floor + authority order, answers stored apart; now with answers not stored) reported: how often
the note is recalled first, how many wrong answers reach the prompt and how many tokens unrelated
questions cost.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.core.clock import SystemClock
from memory.eval import Dataset, ingest, load_beir
from memory.keyword import Filters
from memory.opening import open_memory
from memory.recall import MemoryRecall, estimate_tokens
from memory.service import Hit, MemoryService

OFF_TOPIC = (
    "Why is the sky blue?", "What is 17 + 25?", "What is the capital of Australia?",
    "How many legs does a spider have?", "Which day comes after Tuesday?", "What is 9 times 8?",
    "How long should I boil an egg?", "Who wrote Hamlet?", "What is the tallest mountain on Earth?",
    "How far away is the Moon?", "Convert 5 miles to kilometres.", "What is the boiling point of water?",
    "Reply with only yes.", "How many days are in a leap year?", "What does CPU stand for?",
    "Summarise photosynthesis in one sentence.", "What is the square root of 144?",
    "Translate 'thank you' into French.", "Which planet is the largest?", "How many minutes are in 3 hours?",
)  # fmt: skip


class Scoped:
    """A memory seen through one conversation (the search the eval's --group-by does), searches cached."""

    def __init__(self, service: MemoryService, conversation: str | None) -> None:
        self.service = service
        self.filters = Filters(where=(("conversation_id", conversation),)) if conversation else Filters()
        self.cache: dict[tuple[str, int], list[Hit]] = {}

    def search(self, query: str, k: int = 10, **_: Any) -> list[Hit]:
        if (query, k) not in self.cache:
            self.cache[query, k] = self.service.search(query, k=k, filters=self.filters, recency=False)
        return self.cache[query, k]


class BeforeRecall(MemoryRecall):
    """The recall of before this change: any keyword match or a cosine of min_similarity, in search order,
    answers as peers of the user's words."""

    def select(self, query: str, *, conversation_id: str, exclude_texts: Sequence[str]) -> list[Hit]:
        excluded = {t.strip().lower() for t in exclude_texts}
        out = []
        for hit in self.service.search(query, k=self.k * 3):
            if hit.record.text.strip().lower() in excluded:
                continue
            if "keyword" in hit.retrievers or hit.retrievers.get("dense", {}).get("score", -1) >= self.min_similarity:
                out.append(hit)
            if len(out) >= self.k:
                break
        return out


def recalled(recall: MemoryRecall, query: str) -> tuple[list[Hit], int]:
    """The memories that reach the prompt (inside the budget) and the tokens of memory's blocks (without
    any line the chat adds around them)."""
    hits = recall.select(query, conversation_id="bench", exclude_texts=[query])
    r = recall._render(hits, "bench")
    ids = {str(i["id"]) for i in r.items}
    return [h for h in hits if h.record.id in ids], sum(estimate_tokens(b) for b in (r.block, r.untrusted_block) if b)


def policies(service: Any) -> dict[str, MemoryRecall]:
    out: dict[str, MemoryRecall] = {"before (keyword or cos 0.25)": BeforeRecall(service, min_similarity=0.25)}
    for floor in (0.25, 0.3, 0.35, 0.4):
        out[f"now, min_similarity {floor}"] = MemoryRecall(service, min_similarity=floor)
    return out


def locomo(folder: Path, index: Path) -> None:
    data: Dataset = load_beir(folder, "dev")
    fresh = not (index / "keyword.sqlite3").exists()
    service = open_memory(index, SystemClock(), recency=False)
    if fresh:
        ingest(service, data.corpus)
    convs = sorted({str(q["metadata"]["conversation_id"]) for q in data.queries.values()})
    scoped = {c: Scoped(service, c) for c in convs}
    rows = []
    names = list(policies(scoped[convs[0]]))
    for name in names:
        ev, items, tokens, off_any, off_tokens = [], [], [], [], []
        for q, v in data.queries.items():
            recall = policies(scoped[str(v["metadata"]["conversation_id"])])[name]
            hits, cost = recalled(recall, v["text"])
            rel = {d for d, g in data.qrels[q].items() if g > 0}
            got = {str(h.record.metadata.get("doc_id")) for h in hits}
            ev.append(len(rel & got) / len(rel) if rel else 0.0)
            items.append(len(hits))
            tokens.append(cost)
        for c in convs:
            recall = policies(scoped[c])[name]
            for question in OFF_TOPIC:
                hits, cost = recalled(recall, question)
                off_any.append(bool(hits))
                off_tokens.append(cost)
        rows.append((name, statistics.fmean(ev), statistics.fmean(items), statistics.fmean(tokens),
                     statistics.fmean(off_any), statistics.fmean(off_tokens)))
    service.close()
    print(f"{len(data.queries)} LoCoMo questions, {len(convs)} conversations; off-topic: {len(OFF_TOPIC)} "
          f"everyday questions x {len(convs)} conversations; k 5, 512 tokens")
    print(f"{'floor':<34} {'evidence in prompt':>18} {'items':>6} {'tokens':>7} {'off-topic: any':>15} {'tokens':>7}")
    for name, e, n, t, a, ot in rows:
        print(f"{name:<34} {e:>18.3f} {n:>6.2f} {t:>7.1f} {a:>15.2f} {ot:>7.1f}")


NOTES = (
    ("Tomas is allergic to peanuts", "Is Tomas allergic to anything?", "No, Tomas has no allergies."),
    ("The wifi password is harbour-lantern-42", "What's the wifi password?", "The wifi password is 4821."),
    ("The bike lock code is 4821", "What is the code for my bike lock?", "Your bike lock code is 1234."),
    ("Mum's birthday is on 14 March", "When is Mum's birthday?", "Mum's birthday is on 2 June."),
    ("The dentist is Dr Okafor, phone 020 7946 0321", "What's the dentist's phone number?",
     "The dentist's number is 555 0100."),
    ("Our car is a green Skoda Fabia", "What car do we have?", "You have a red Ford Focus."),
    ("Recycling goes out on Thursday evenings", "When does the recycling go out?",
     "Recycling goes out on Monday mornings."),
    ("The spare key is under the flower pot by the shed", "Where is the spare key?",
     "The spare key is in the kitchen drawer."),
    ("Grandma's flat is number 12 on Elm Street", "What is Grandma's address?",
     "Grandma lives at 7 Oak Road."),
    ("The gym membership renews in September", "When does my gym membership renew?",
     "Your gym membership renews in January."),
)  # fmt: skip
WRONG = (
    ("Why is the sky blue?", "The sky reflects the ocean, which is why it looks green at noon."),
    ("What is 17 + 25?", "17 + 25 = 30."),
    ("What is the capital of Australia?", "Sydney is the capital of Australia."),
    ("How many legs does a spider have?", "A spider has six legs."),
    ("Which day comes after Tuesday?", "Tuesday comes after Monday."),
    ("What is 9 times 8?", "9 times 8 is 64."),
    ("How long should I boil an egg?", "Boil an egg for about an hour."),
    ("Who wrote Hamlet?", "Charles Dickens wrote Hamlet."),
    ("What is the tallest mountain on Earth?", "Mount Kilimanjaro is the tallest mountain on Earth."),
    ("How far away is the Moon?", "The Moon is about 100 kilometres away."),
)


def notes() -> None:
    clock = SystemClock()
    rows = []
    for store_answers in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            service = open_memory(Path(tmp), clock, recency=False)
            for note, _, _ in NOTES:
                service.add(note, source="note")
            recall = MemoryRecall(service)
            for n, (question, answer) in enumerate(WRONG + tuple((q, a) for _, q, a in NOTES)):
                turns = [("user", question)] + ([("assistant", answer)] if store_answers else [])
                recall.remember_turns(f"c{n}", turns, None)
            wrong = {a for _, a in WRONG} | {a for _, _, a in NOTES}
            kinds = policies(service) if store_answers else {}
            chosen = {"before (keyword or cos 0.25)": kinds.get("before (keyword or cos 0.25)"),
                      "now (min_similarity 0.35)": MemoryRecall(service, min_similarity=0.35)}
            for name, policy in chosen.items():
                if policy is None:
                    continue
                first = wrong_in = 0
                items = []
                for note, question, _ in NOTES:
                    hits, _ = recalled(policy, question)
                    first += bool(hits) and hits[0].record.text == note
                    wrong_in += sum(h.record.text in wrong for h in hits)
                    items.append(len(hits))
                off = [recalled(policy, q) for q in OFF_TOPIC if q not in dict(WRONG)]
                wrong_in += sum(h.record.text in wrong for hits, _ in off for h in hits)
                label = name + ("" if store_answers else ", answers not stored")
                rows.append((label, first, wrong_in, statistics.fmean(items),
                             statistics.fmean(bool(h) for h, _ in off), statistics.fmean(t for _, t in off)))
            service.close()
    print(f"{len(NOTES)} notes, {len(WRONG)} unrelated questions and {len(NOTES)} note questions answered wrongly "
          f"first; each note question asked again; {len(OFF_TOPIC) - len(WRONG)} new off-topic questions")
    print(f"{'policy':<50} {'note first':>10} {'wrong answers in prompt':>23} {'items':>6} "
          f"{'off-topic: any':>15} {'tokens':>7}")
    for name, first, wrong_in, per_q, any_, tokens in rows:
        print(f"{name:<50} {first:>7}/{len(NOTES)} {wrong_in:>23} {per_q:>6.2f} {any_:>15.2f} {tokens:>7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    lo = sub.add_parser("locomo")
    lo.add_argument("folder", type=Path)
    lo.add_argument("--index", type=Path, required=True)
    sub.add_parser("notes")
    args = ap.parse_args()
    if args.what == "locomo":
        locomo(args.folder, args.index)
    else:
        notes()


if __name__ == "__main__":
    main()
