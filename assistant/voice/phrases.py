"""The command phrases recognised first, before free dictation: the usual ways to ask for each skill.

Small-device assistants recognise a closed set of commands far better than open speech, so the speech
recogniser decodes against a grammar built from these phrases (plus the daemon's skills and the user's
``voice.phrases``) and only falls back to its general language model when no phrase fits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_PHRASES: tuple[str, ...] = (
    # time and date
    "what time is it",
    "what's the time",
    "tell me the time",
    "what day is it",
    "what is the date today",
    # news
    "read me the headlines",
    "what are the headlines",
    "what's in the news",
    "read the news",
    # digest
    "give me the digest",
    "read me the digest",
    "give me my daily digest",
    # stories
    "tell me a seuss story",
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
)

# Recognised phrases that run a built-in skill directly (as its chat slash command), when the daemon has it.
SKILL_PHRASES: dict[str, tuple[str, ...]] = {
    "time": ("what time is it", "what's the time", "tell me the time", "what day is it", "what is the date today"),
    "digest": (
        "give me the digest",
        "read me the digest",
        "give me my daily digest",
        "read me the headlines",
        "what are the headlines",
        "what's in the news",
        "read the news",
    ),
    "seuss": ("tell me a seuss story",),
}

OPTIONAL_LEADING = ("please", "hey")
OPTIONAL_TRAILING = ("please", "now")

_WORD = re.compile(r"[a-z][a-z']*")


def normalize(text: str) -> str:
    """Lower case words only: "What's the time?" -> "what's the time"; drops pronunciation marks like (2)."""
    text = re.sub(r"\(\d+\)", "", text.lower())
    return " ".join(_WORD.findall(text))


def skill_phrases(skills: Iterable[dict[str, object]]) -> list[str]:
    """Phrases for the daemon's skills (``GET /api/skills`` items): their own example phrasings if they list
    any, and "run <name>" / "run the <name> skill" with the name's words ("seuss_story" -> "seuss story")."""
    out: list[str] = []
    for item in skills:
        name = item.get("name")
        for key in ("phrases", "examples", "utterances"):
            extra = item.get(key)
            if isinstance(extra, list):
                out += [str(p) for p in extra if isinstance(p, str)]
        if isinstance(name, str):
            words = normalize(name.replace("_", " ").replace("-", " "))
            if words:
                out += [f"run {words}", f"run the {words} skill", words]
    return out


def skill_for(command: str, skill_names: Iterable[str]) -> str | None:
    """The skill a recognised command runs ("read me the headlines" -> "digest", "run the seuss skill" ->
    "seuss"), among the daemon's skills; None for anything else (it goes to the model as text)."""
    names = set(skill_names)
    for name, phrases in SKILL_PHRASES.items():
        if name in names and command in phrases:
            return name
    for name in names:
        words = normalize(name.replace("_", " ").replace("-", " "))
        if words and command in (f"run {words}", f"run the {words} skill"):
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
