"""Does feedback on answers improve retrieval for similar questions, without hurting other questions?

A memory store of personal notes (the real MemoryService: Chroma, FTS5, the default ONNX MiniLM embedder)
holds, for each of 20 training topics, the memory that answers the topic's question and "trap" memories
that share its words but do not answer it (the plumber's number for "the dentist's phone number"). A
simulated user asks each training question through the same search the chat recall uses (the top
``--recall-k`` memories go into the answer), marks the answer good when its first memory is a right one
and bad otherwise, and asks once more (``--rounds``). The ratings go into memory/feedback.py exactly as
``POST /api/feedback`` stores them.

Measured before and after the ratings, nDCG@10 on:

- **paraphrases**: two held-back rewordings of each training question (never asked, never rated);
- **unrelated**: questions about other things, with their own right memories;
- **neighbours**: questions whose right answer is one of the traps (e.g. "the plumber's number"): the
  similar-but-different questions where demoting a trap could hurt.

    python -m benchmarks.feedback_experiment [--rounds 2] [--recall-k 5] [--answers] [--json]

The question set was written for this project (no external data).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.eval import ndcg_at
from memory.feedback import FeedbackConfig, FeedbackStore
from memory.opening import make_embedder, open_memory
from memory.service import MemoryService, NewMemory


@dataclass(frozen=True)
class Topic:
    key: str
    question: str
    paraphrases: tuple[str, str]
    right: tuple[str, ...]
    traps: tuple[str, ...]
    neighbour: str | None = None  # a question that traps[0] answers


TOPICS: tuple[Topic, ...] = (
    Topic(
        "dentist",
        "What is the dentist's phone number?",
        ("How do I ring the dentist?", "Which number do I call for the dentist?"),
        ("Dr. Okafor's practice (teeth): 020 7946 0321, open weekdays 8 to 6.",),
        ("Phone number of the plumber: 07700 900123.", "Remember to call the dentist about the bill."),
        "What is the plumber's number?",
    ),
    Topic(
        "wifi",
        "What is the wifi password?",
        ("How do I get on the home internet?", "What's the password for the router?"),
        ("Home network 'Larkspur' key: purple-otter-42 (sticker on the box under the TV).",),
        ("The password for the gym locker is 1987.", "Wifi at the office is slow on Mondays."),
        "What is the code of my gym locker?",
    ),
    Topic(
        "car_service",
        "When is the car due for a service?",
        ("When does the car need servicing?", "When should I book the car in for maintenance?"),
        ("Garage said the Golf needs its next inspection in April, at 60,000 km.",),
        ("The bike had a service in June, new brake pads.", "Car insurance renews on the 3rd of September."),
        "When does the car insurance renew?",
    ),
    Topic(
        "mum_birthday",
        "When is my mother's birthday?",
        ("What date is Mum's birthday?", "When do I need a present for my mum?"),
        ("Mum was born on 14 November 1958.",),
        ("My father's birthday is on the 2nd of May.", "Birthday party for Leo on Saturday at the park."),
        "When is my dad's birthday?",
    ),
    Topic(
        "passport",
        "Where did I put my passport?",
        ("Where is my passport kept?", "Where can I find the passport?"),
        ("Travel documents are in the grey folder, top drawer of the desk in the study.",),
        ("Passport photos cost 8 euros at the pharmacy.", "I put the spare car keys in the kitchen drawer."),
        "Where are the spare car keys?",
    ),
    Topic(
        "allergy",
        "What is Sam allergic to?",
        ("Which food must Sam avoid?", "Does Sam have any allergies?"),
        ("Sam reacts badly to peanuts and sesame; keep the EpiPen in the blue bag.",),
        ("Anna is allergic to cats.", "Sam likes pasta with tomato sauce."),
        "What is Anna allergic to?",
    ),
    Topic(
        "landlord",
        "How do I contact the landlord?",
        ("What is the landlord's email?", "How can I reach the landlord?"),
        ("Flat owner Mr. Brandt: brandt.rentals@example.org, replies within a day.",),
        ("The landlord raised the rent by 3 percent in January.", "Contact the council about the bins."),
        "How much did the landlord raise the rent?",
    ),
    Topic(
        "bike_lock",
        "What is the code for the bike lock?",
        ("How do I open the bike lock?", "What's the combination of my bike lock?"),
        ("Combination for the green Abus chain: 4-7-1-2.",),
        ("The code for the garage door is 5590.", "The bike lock was bought at the market for 25 euros."),
        "What is the garage door code?",
    ),
    Topic(
        "meds",
        "When should I take my blood pressure tablets?",
        ("What time do I take the blood pressure medication?", "When are my tablets due?"),
        ("Ramipril: one in the morning with breakfast, never with grapefruit.",),
        (
            "Take the cat's worming tablet every three months.",
            "Blood pressure was 128 over 82 at the check-up.",
        ),
        "When does the cat get its worming tablet?",
    ),
    Topic(
        "recycling",
        "Which day is the recycling collected?",
        ("When do the recycling bins go out?", "On what day is the recycling picked up?"),
        ("Yellow bag and paper bin: put them out on Wednesday evenings, collected Thursday morning.",),
        ("The general waste is collected on Mondays.", "Recycling centre is closed on Sundays."),
        "When is the general waste collected?",
    ),
    Topic(
        "boss_name",
        "What is my new manager's name?",
        ("Who is my new boss?", "Who do I report to now?"),
        ("Since March I report to Priya Raman, head of the data team.",),
        ("My old manager Tom moved to the Berlin office.", "New manager training is on Friday."),
        "Where did my old manager Tom go?",
    ),
    Topic(
        "vet",
        "When is the cat's vet appointment?",
        ("When does Miso go to the vet?", "What day is the vet visit for the cat?"),
        ("Miso: vaccination at Dr. Lindqvist on the 9th at 16:30.",),
        ("The dog's vet appointment is on Tuesday at 10.", "Cat food is on offer at the pet shop."),
        "When is the dog's vet appointment?",
    ),
    Topic(
        "insurance_number",
        "What is my health insurance number?",
        ("Which number is on my health insurance card?", "What's my health insurance member ID?"),
        ("TK member ID A123456789, the card is in the black wallet.",),
        ("Home insurance policy number HX-55-2031.", "Health insurance covers one dental cleaning a year."),
        "What is my home insurance policy number?",
    ),
    Topic(
        "train",
        "What time is my train to Hamburg?",
        ("When does the Hamburg train leave?", "At what time do I depart for Hamburg?"),
        ("ICE 784 departs Berlin Hbf 07:36, coach 5 seat 61, arrives 09:20.",),
        ("The train back from Munich leaves at 18:04.", "Hamburg hotel check-in is after 3 pm."),
        "When does the train back from Munich leave?",
    ),
    Topic(
        "shoe_size",
        "What is Leo's shoe size?",
        ("What size shoes does Leo wear?", "Which shoe size should I buy for Leo?"),
        ("Leo's feet measured 19.5 cm at the shop in May: EU 31.",),
        ("My shoe size is 43.", "Leo needs new rain boots before autumn."),
        "What is my own shoe size?",
    ),
    Topic(
        "pin_bank",
        "Where is the bank's branch?",
        ("Where is my bank's office?", "What is the address of the bank branch?"),
        ("Sparkasse office: Karl-Marx-Strasse 12, next to the bakery, counter closes at 4.",),
        ("The bank card PIN letter is shredded.", "The bakery sells rye bread on Fridays."),
        "What happened to the bank card PIN letter?",
    ),
    Topic(
        "paint",
        "Which paint colour did we use in the living room?",
        ("What colour is the living room wall?", "Which paint do I buy to touch up the living room?"),
        ("Living room: Farrow & Ball 'Setting Plaster', matt emulsion, two coats.",),
        ("The bedroom is painted in 'Pale Powder'.", "Paint brushes are in the shed."),
        "What colour is the bedroom?",
    ),
    Topic(
        "tax_advisor",
        "Who does my tax return?",
        ("Who is my tax advisor?", "Who prepares my taxes?"),
        ("Steuerberaterin Frau Klein, Hauptstrasse 5, she files it every May.",),
        ("The tax return deadline is the 31st of July.", "Ask the neighbour who fixed their roof."),
        "When is the tax return deadline?",
    ),
    Topic(
        "blood_type",
        "What is my blood type?",
        ("Which blood group am I?", "What's my blood group?"),
        ("Donor card says: A negative.",),
        ("Blood test results are due next week.", "My brother is type O positive."),
        "What is my brother's blood type?",
    ),
    Topic(
        "neighbour_keys",
        "Which neighbour has our spare key?",
        ("Who has a copy of our house key?", "Where can I get the spare house key?"),
        ("Frau Yilmaz on the 2nd floor keeps a copy of the flat key.",),
        ("The neighbour's dog barks at night.", "Spare key for the shed is under the flowerpot."),
        "Where is the spare key for the shed?",
    ),
)

# Questions about other things, each with its own right memory (never rated).
UNRELATED: tuple[tuple[str, str], ...] = (
    (
        "What did I plant in the garden this spring?",
        "Planted tomatoes, basil and two rows of carrots in April.",
    ),
    ("Which book am I reading?", "Currently reading 'The Overstory' by Richard Powers, on chapter 7."),
    (
        "What is the name of the Italian restaurant we liked?",
        "Trattoria da Luca on Oranienstrasse: great gnocchi.",
    ),
    ("How many kilometres did I run last Sunday?", "Sunday run: 12 km along the canal in 68 minutes."),
    (
        "What is the recipe for grandma's pancakes?",
        "Grandma's pancakes: 2 eggs, 250 g flour, 500 ml milk, pinch of salt.",
    ),
    ("Which films do I want to watch?", "Films to see: Past Lives, Perfect Days, Anatomy of a Fall."),
    ("What size is the bedroom window?", "Bedroom window is 120 by 140 cm, for the new blinds."),
    ("When does the swimming pool open?", "The public pool opens at 6:30 on weekdays, 8 on weekends."),
    ("What did the doctor say about my knee?", "Knee: mild strain, physiotherapy twice a week for a month."),
    (
        "Which language course did I sign up for?",
        "Signed up for Spanish A2 at the Volkshochschule, Tuesdays.",
    ),
    ("What is my sister's address?", "Lena lives at Rue des Lilas 8, 69003 Lyon."),
    ("How much did the new fridge cost?", "Bought the Bosch fridge for 649 euros, two-year warranty."),
)

# Everyday notes with no question of their own: realistic noise in the store.
FILLER: tuple[str, ...] = (
    "Buy oat milk, eggs and coffee beans.",
    "Meeting with the architect moved to Thursday.",
    "The heating engineer comes between 8 and 12.",
    "Return the library books by the 20th.",
    "Ideas for the holiday: Lisbon or the Baltic coast.",
    "The printer needs a new black cartridge.",
    "Call Grandpa on Sunday afternoon.",
    "The kids' school play is on the 14th.",
    "Cancel the magazine subscription before renewal.",
    "Water the plants on the balcony every two days.",
    "The electricity meter reading was 45210 in January.",
    "Try the new climbing gym in Neukölln.",
    "Order a birthday cake from the bakery on Main Street.",
    "Recipe idea: lentil soup with lemon.",
    "Book tickets for the concert in the park.",
    "The washing machine makes a noise on spin.",
    "Pick up the dry cleaning on Friday.",
    "Upgrade the laptop's memory to 16 GB.",
    "Leo's football training moved to 5 pm.",
    "Write a thank-you card to the Müllers.",
)


@dataclass
class Rated:
    question: str
    good: bool
    recalled: list[str] = field(default_factory=list)


def build_store(directory: Path, threads: int) -> tuple[MemoryService, dict[str, list[str]]]:
    """The memory store and, by text, the ids it was given."""
    from assistant.config import default_data_dir
    from tests.fakes import FixedClock

    clock = FixedClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    service = open_memory(
        directory, clock, embedder=make_embedder("onnx", default_data_dir(), threads=threads), recency=False
    )
    texts: list[str] = []
    for t in TOPICS:
        texts += [*t.right, *t.traps]
    texts += [m for _, m in UNRELATED] + list(FILLER)
    ids = service.add_many([NewMemory(text, "note") for text in texts])
    by_text: dict[str, list[str]] = {}
    for text, memory_id in zip(texts, ids, strict=True):
        by_text.setdefault(text, []).append(memory_id)
    return service, by_text


def query_sets(by_text: dict[str, list[str]]) -> dict[str, list[tuple[str, dict[str, int]]]]:
    def rels(texts: tuple[str, ...] | list[str]) -> dict[str, int]:
        return {i: 1 for t in texts for i in by_text[t]}

    return {
        "training": [(t.question, rels(t.right)) for t in TOPICS],
        "paraphrases": [(p, rels(t.right)) for t in TOPICS for p in t.paraphrases],
        "unrelated": [(q, rels([m])) for q, m in UNRELATED],
        "neighbours": [(t.neighbour, rels([t.traps[0]])) for t in TOPICS if t.neighbour],
    }


def mean_ndcg(service: MemoryService, queries: list[tuple[str, dict[str, int]]]) -> float:
    scores = [ndcg_at([h.record.id for h in service.search(q, k=10)], rels, 10) for q, rels in queries]
    return statistics.fmean(scores)


def simulate_user(
    service: MemoryService,
    store: FeedbackStore,
    training: list[tuple[str, dict[str, int]]],
    rounds: int,
    k: int,
    answers: bool = False,
) -> list[Rated]:
    """Ask each training question ``rounds`` times; mark the answer good when its first memory is right.
    With ``answers`` the rating carries the answer's text, the first memory's (an answer built on it), so
    only the memories that answer used move (memory/feedback.py)."""
    rated: list[Rated] = []
    turn = 0
    for _ in range(rounds):
        for question, rels in training:
            recalled = [h.record.id for h in service.search(question, k=k)]
            good = bool(recalled) and recalled[0] in rels
            turn += 1
            answer = service.texts(recalled[:1]).get(recalled[0], "") if answers and recalled else None
            store.record(
                question=question, memory_ids=recalled, good=good, conversation_id="sim", turn_id=turn,
                answer=answer,
            )
            rated.append(Rated(question, good, recalled))
    return rated


def run(
    rounds: int, recall_k: int, threads: int, config: FeedbackConfig, answers: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        service, by_text = build_store(Path(tmp) / "memory", threads)
        sets = query_sets(by_text)
        before = {name: mean_ndcg(service, qs) for name, qs in sets.items()}
        store = FeedbackStore(Path(tmp) / "feedback.sqlite3", service.query_vector, service.clock, config,
                              texts=service.texts)  # fmt: skip
        service.feedback = store
        rated = simulate_user(service, store, sets["training"], rounds, recall_k, answers)
        after = {name: mean_ndcg(service, qs) for name, qs in sets.items()}
        store.close()
        service.close()
        elapsed = time.perf_counter() - t0
    return {
        "memories": sum(len(v) for v in by_text.values()),
        "queries": {name: len(qs) for name, qs in sets.items()},
        "ratings": len(rated),
        "good_first_round": sum(r.good for r in rated[: len(TOPICS)]),
        "good_last_round": sum(r.good for r in rated[-len(TOPICS) :]),
        "ndcg10_before": before,
        "ndcg10_after": after,
        "config": config.__dict__,
        "rounds": rounds,
        "recall_k": recall_k,
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="times the user asks each training question")
    ap.add_argument(
        "--recall-k", type=int, default=5, help="memories recalled into an answer (memory.recall_k)"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--threshold", type=float, default=FeedbackConfig.threshold)
    ap.add_argument("--bound", type=float, default=FeedbackConfig.bound)
    ap.add_argument("--step", type=float, default=FeedbackConfig.step)
    ap.add_argument("--rank-power", type=float, default=FeedbackConfig.rank_power)
    ap.add_argument("--answers", action="store_true",
                    help="ratings carry the answer (the first memory's text): only the memories it used move")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    config = FeedbackConfig(
        threshold=args.threshold, bound=args.bound, step=args.step, rank_power=args.rank_power
    )
    result = run(args.rounds, args.recall_k, args.threads, config, args.answers)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['memories']} memories; {result['ratings']} ratings ({args.rounds} rounds of "
        f"{len(TOPICS)} questions, top {args.recall_k} recalled); good answers: "
        f"{result['good_first_round']}/{len(TOPICS)} in the first round, {result['good_last_round']}/{len(TOPICS)} "
        f"in the last"
    )
    print(f"{'set':<12} {'queries':>7} {'nDCG@10 before':>15} {'after':>7} {'change':>7}")
    for name, n in result["queries"].items():
        b, a = result["ndcg10_before"][name], result["ndcg10_after"][name]
        print(f"{name:<12} {n:>7} {b:>15.3f} {a:>7.3f} {a - b:>+7.3f}")
    print(f"({result['seconds']} s; feedback {result['config']})")


if __name__ == "__main__":
    main()
