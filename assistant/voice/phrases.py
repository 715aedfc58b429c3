"""The command phrases recognised first, before free dictation.

Small-device assistants recognise a closed set of commands far better than open speech, so the speech
recogniser decodes against a grammar built from these phrases and only falls back to its general language
model when no phrase fits. The grammar is ``DEFAULT_PHRASES`` (conversation and voice control, nothing
skill-specific) plus what the daemon's skills declare (``GET /api/skills``: each skill's ``phrases``, and
"run <name>") plus the user's ``voice.phrases``. A recognised phrase of a skill runs that skill directly.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)

_SPOKEN_MINUTES = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve",
                   "fifteen", "twenty", "twenty five", "thirty", "forty", "forty five", "sixty", "ninety")  # fmt: skip
# Reminders, timers and alarms (assistant.reminders.chat answers them from the words; open-ended ones such as
# "remind me tomorrow at nine to call mum" come by dictation).
REMINDER_PHRASES: tuple[str, ...] = (
    *(f"set a timer for {n} minute{'' if n == 'one' else 's'}" for n in _SPOKEN_MINUTES),
    *(f"remind me in {n} minute{'' if n == 'one' else 's'}" for n in _SPOKEN_MINUTES),
    "set a timer for half an hour",
    "set a timer for an hour",
    "what reminders do i have",
    "what timers are running",
    "how long is left on the timer",
    "how much time is left",
    "cancel the timer",
    "cancel the alarm",
    "snooze",
    "snooze ten minutes",
    "snooze five minutes",
)

DEFAULT_PHRASES: tuple[str, ...] = (
    # stories and jokes (answered by the model)
    "tell me a story",
    "tell me a bedtime story",
    "tell me a joke",
    # memory
    "what do you remember",
    "what did i ask you to remember",
    "forget that",
    # notifications and skills
    "any notifications",
    "read my notifications",
    "what skills do you have",
    "what can you do",
    # conversation control
    "hello",
    "thank you",
    "stop",
    "cancel",
    "repeat that",
    "say that again",
    "new conversation",
    "goodbye",
    *REMINDER_PHRASES,
)

SkillItem = str | Mapping[str, object]  # a skill name, or an item of GET /api/skills

OPTIONAL_LEADING = ("please", "hey")
OPTIONAL_TRAILING = ("please", "now")

_WORD = re.compile(r"[a-z][a-z']*")


def normalize(text: str) -> str:
    """Lower case words only: "What's the time?" -> "what's the time"; drops pronunciation marks like (2)."""
    text = re.sub(r"\(\d+\)", "", text.lower())
    return " ".join(_WORD.findall(text))


def _name_words(name: str) -> str:
    return normalize(name.replace("_", " ").replace("-", " "))


def _fixed(phrases: object) -> list[str]:
    """The fixed phrases of a listing: text without ``{capture}`` placeholders (no closed grammar can
    hold an open slot; the daemon's chat still matches those when the words come by dictation)."""
    if not isinstance(phrases, list | tuple):
        return []
    return [p for p in phrases if isinstance(p, str) and "{" not in p and p.strip()]


def skill_phrases(skills: Iterable[Mapping[str, object]]) -> list[str]:
    """Phrases for the daemon's skills (``GET /api/skills`` items): the phrases each skill declares, and
    "run <name>" / "run the <name> skill" / "<name>" with the name's words ("seuss_story" -> "seuss story")."""
    out: list[str] = []
    for item in skills:
        name = item.get("name")
        for key in ("phrases", "examples", "utterances"):
            out += _fixed(item.get(key))
        if isinstance(name, str):
            words = _name_words(name)
            if words:
                out += [f"run {words}", f"run the {words} skill", words]
    return out


@functools.cache
def installed_skills() -> tuple[Mapping[str, object], ...]:
    """``GET /api/skills`` items for the skills installed here: for when the daemon's listing is not at
    hand (no daemon, or a caller that only kept the skill names)."""
    try:
        from assistant.skillkit.registry import SkillRegistry

        return tuple(SkillRegistry.discover().describe())
    except Exception:  # noqa: BLE001 - without them, only "run <name>" maps to a skill
        log.warning("could not list the skills installed here", exc_info=True)
        return ()


def skill_for(command: str, skills: Iterable[SkillItem]) -> str | None:
    """The skill a recognised command runs ("read me the headlines" -> "digest", "run the seuss skill" ->
    "seuss"), among the daemon's skills; None for anything else (it goes to the model as text).

    ``skills`` are the daemon's ``GET /api/skills`` items (their declared ``phrases`` are used); a bare
    skill name also works, with the phrases of the skill of that name installed here. When two skills
    declare a phrase, a built-in wins (as in the daemon's chat)."""
    wanted = normalize(command)
    if not wanted:
        return None
    items: list[tuple[bool, str, list[str]]] = []
    for item in skills:
        if isinstance(item, str):
            here = next((i for i in installed_skills() if i.get("name") == item), {})
            items.append((True, item, _fixed(here.get("phrases"))))
        elif isinstance(item.get("name"), str):
            items.append((item.get("origin") == "builtin", str(item["name"]), _fixed(item.get("phrases"))))
    items.sort(key=lambda i: not i[0])  # as in the daemon's chat: built-ins keep their phrases
    for _, name, phrases in items:
        if any(normalize(p) == wanted for p in phrases):
            return name
    for _, name, _ in items:
        words = _name_words(name)
        if words and wanted in (f"run {words}", f"run the {words} skill"):
            return name
    return None


def unique_phrases(phrases: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for p in phrases:
        n = normalize(p)
        if n:
            seen.setdefault(n, None)
    return list(seen)


def strip_optional(text: str, wake_word: str | None = None) -> str:
    """The command inside a grammar match: drops the wake word and the optional politeness words."""
    words = normalize(text).split()
    wake = normalize(wake_word or "").split()
    if wake and words[: len(wake)] == wake:
        words = words[len(wake) :]
    while words and words[0] in OPTIONAL_LEADING:
        words = words[1:]
    while words and words[-1] in OPTIONAL_TRAILING:
        words = words[:-1]
    return " ".join(words)


def to_jsgf(phrases: Iterable[str], wake_word: str | None = None) -> str:
    """A JSGF grammar: ``[please|hey] (phrase | phrase ...) [please|now]``, after the wake word if one is set."""
    alts = " | ".join(f"( {p} )" for p in phrases)
    wake = normalize(wake_word or "")
    head = f"{wake} " if wake else ""
    lead = " | ".join(OPTIONAL_LEADING)
    trail = " | ".join(OPTIONAL_TRAILING)
    return (
        "#JSGF V1.0;\n"
        "grammar commands;\n"
        f"public <utterance> = {head}[ {lead} ] <command> [ {trail} ];\n"
        f"<command> = {alts};\n"
    )
