"""Questions about the user's own life, and questions about what the assistant said (issue 22, the loop).

A small model asked "What's my brother's name?" with nothing about a brother in memory answers "Your
brother's name is Jack."; stored, that answer came back as a memory in a new conversation ("Do I have a
brother?" -> "Yes, you have a brother named Jack."). Two decisions made by code here, used by recall
(memory/recall.py):

- ``personal_question``: the message asks for a fact of the user's own life ("What's my brother's name?",
  "Where did I leave my umbrella?", "Do I have a brother?", "Is my passport still valid?"). Only question
  shapes that ask for a fact: "How do I boil an egg?", "What should I ...", "What's a good gift for my mum?",
  "If I was born in 1990 ..." ask for help and are not matched (a miss costs nothing: the prompt is as
  before; a false match adds a line to a general question). When recall puts nothing of the user's own
  (a note, something they said, a skill's output) that ``mentions`` the question's topic into the prompt,
  recall says so in one line (``absence_line``), as the calendar line states the date: a fact from code.
- ``asks_about_the_assistant``: the message refers back to what the assistant said ("What did you
  recommend for volcanoes?", "you said ..."). Only then are the assistant's own earlier answers recalled:
  an answer is what the assistant said, never a fact about the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memory.overlap import content_words

_WH = r"(?:what|who|where|when|which|whose|how much|how many|how old|how long|how far)"
_BE = r"(?:'s|'re|\s+is|\s+are|\s+was|\s+were|\s+does|\s+do|\s+did|\s+will|\s+has|\s+have|\s+had)"
# "What's my brother's name?", "Which school does my daughter go to?", "What's the code for my bike lock?"
_ABOUT_MY = re.compile(
    rf"^{_WH}(?:\s+[a-z]+){{0,2}}?{_BE}\s+(?:the\s+[a-z]+\s+(?:of|for|on|at)\s+)?my\s+(?P<rest>.+)$", re.I
)
# "Can you give me my dentist's number?", "Do you know my blood type?", "Tell me my brother's name."
_TELL_ME_MY = re.compile(
    r"^(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:tell|give|remind)\s+me|(?:do|did)\s+you\s+know"
    r"|(?:please\s+)?(?:tell|remind)\s+me)\s+(?:of\s+|about\s+|what\s+)?my\s+(?P<rest>.+)$",
    re.I,
)
# "Where did I leave my umbrella?", "What did I buy?", "How much have I spent?" (not "How do I ...": help)
_DID_I = re.compile(rf"^{_WH}(?:\s+[a-z]+){{0,2}}?\s+(?:did|have|had|was)\s+I\s+(?P<rest>.+)$", re.I)
# "When do I take my pill?" asks about the user's own thing; "What do I need for pancakes?" asks for help
_DO_I_MY = re.compile(rf"^{_WH}(?:\s+[a-z]+){{0,2}}?\s+do\s+I\s+.*?\bmy\s+(?P<rest>.+)$", re.I)
# "Do I have a brother?", "Did I pay the electricity bill?", "Is my passport still valid?", "Have I ..."
_YES_NO = re.compile(r"^(?:did\s+I|have\s+I)\s+(?P<rest>.+)$", re.I)
_IS_MY = re.compile(r"^(?:is|are|was|were|has|have)\s+my\s+(?P<rest>.+)$", re.I)
_HAVE_A = re.compile(r"^do\s+I\s+have\s+(?P<article>a|an|any)\s+(?P<rest>.+)$", re.I)
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")

# Where a noun phrase after "my" ends: prepositions, verbs and other words that follow the thing asked about.
_NP_END = frozenset(
    "to from with at in on for of about by and or but that which who is are was were be been do does did "
    "go goes going leave left live lives work works start starts end ends called named call expire expires "
    "due get got have has had take took like likes want wants need needs cost costs mean open close "
    "still now today yesterday tomorrow again ever usually".split()
)
# Words that ask for an attribute of the thing rather than name it: a note about the thing answers them.
_ATTRIBUTES = frozenset(content_words(
    "name names number numbers code codes address time times date dates day days called named exactly "
    "again still ever usually currently"
))  # fmt: skip
_GENERIC_VERBS = frozenset(content_words("do does did have has had go went get got put leave left"))
_WORD = re.compile(r"[A-Za-z][\w'’-]*")


@dataclass(frozen=True)
class PersonalQuestion:
    """A question about the user's own life: ``phrase`` names its topic in the user's voice, as the line
    says it ("my brother's name", "whether I have a brother"; "this" when it has no noun phrase after "my");
    ``topic`` holds the content words a memory must hold, all of them, to mention it."""

    phrase: str
    topic: frozenset[str]
    yes_no: bool = False  # "Do I have a brother?": qwen1.5b answered "No." to a line without "yes or no"


def _noun_phrase(rest: str) -> str:
    """The words after "my" that name the thing: "brother's name", "car insurance", "flight to Rome"."""
    words = _WORD.findall(rest)
    out: list[str] = []
    for n, word in enumerate(words):
        low = word.lower()
        if low in _NP_END:
            # "my flight to Rome": a preposition before a name still belongs to the thing
            following = words[n + 1] if n + 1 < len(words) else ""
            if low in ("to", "from", "in", "at") and following[:1].isupper() and out:
                out.append(word)
                continue
            break
        if out and out[-1].lower() in ("to", "from", "in", "at") and not word[:1].isupper():
            break
        out.append(word)
        if len(out) >= 5:
            break
    while out and out[-1].lower() in ("to", "from", "in", "at"):
        out.pop()
    return " ".join(out)


def personal_question(message: str) -> PersonalQuestion | None:
    """The question about the user's own life that ``message`` asks, or None (see the module's docstring)."""
    for raw in _SENTENCE.findall(message):
        sentence = raw.strip().rstrip("?.! ").replace("\u2019", "'")
        if not sentence or not (raw.rstrip().endswith("?") or _TELL_ME_MY.match(sentence)):
            continue
        for pattern in (_ABOUT_MY, _DO_I_MY, _IS_MY, _HAVE_A, _TELL_ME_MY):
            m = pattern.match(sentence)
            if m is not None:
                phrase = _noun_phrase(m.group("rest"))
                topic = content_words(phrase) - _ATTRIBUTES
                if topic:
                    if pattern is _HAVE_A:
                        return PersonalQuestion(f"whether I have {m.group('article')} {phrase}", topic, True)
                    if pattern is _IS_MY:  # "Is my passport still valid?"
                        return PersonalQuestion("this", topic, True)
                    return PersonalQuestion(f"my {phrase}", topic)
        for pattern in (_DID_I, _YES_NO):
            m = pattern.match(sentence)
            if m is not None:
                rest = m.group("rest")
                yes_no = pattern is _YES_NO
                mine = re.search(r"\bmy\s+(.+)$", rest, re.I)
                if mine is not None and (phrase := _noun_phrase(mine.group(1))):
                    topic = content_words(phrase) - _ATTRIBUTES
                    if topic:
                        return PersonalQuestion("this" if yes_no else f"my {phrase}", topic, yes_no)
                topic = content_words(rest) - _ATTRIBUTES - _GENERIC_VERBS
                if topic:
                    return PersonalQuestion("this", topic, yes_no)
    return None


def mentions(question: PersonalQuestion, text: str) -> bool:
    """Whether ``text`` (a memory, a turn in the prompt) mentions the question's topic: holds all its words."""
    return question.topic <= content_words(text)


def absence_line(question: PersonalQuestion) -> str:
    """The line recall puts before the user's words when nothing of the user's own mentions the topic. In the
    user's voice, as the message it stands in; the wording measured in docs/memory.md ("Questions no memory
    answers"): "(Nothing you have told me mentions ...)" left qwen0.5b inventing the dentist's number and
    the daughter's school; without "Do not answer yes or no", qwen1.5b answered "Do I have a brother?" with
    "No."."""
    say = "Do not answer yes or no; say that you don't know." if question.yes_no else "Say that you don't know."
    return f"(You don't know {question.phrase}: I have never told you. {say})"


_TO_THE_ASSISTANT = re.compile(
    r"\b(?:did|have|had|would)\s+you\s+(?:\w+\s+)?(?:say|said|tell|told|recommend|recommended|suggest|suggested|"
    r"answer|answered|mention|mentioned|advise|advised|give|gave|write|wrote|reply|replied|propose|proposed|"
    r"name|named|call|called)\b"
    r"|\byou\s+(?:just\s+|already\s+)?(?:said|told|recommended|suggested|answered|mentioned|advised|gave|wrote|"
    r"replied|proposed)\b"
    r"|\byour\s+(?:answer|suggestion|recommendation|advice|reply|tip|idea)s?\b",
    re.I,
)


def asks_about_the_assistant(message: str) -> bool:
    """Whether ``message`` refers back to what the assistant said ("What did you recommend ...?", "You said
    ...", "your suggestion"): the only messages the assistant's earlier answers are recalled for."""
    return _TO_THE_ASSISTANT.search(message) is not None
