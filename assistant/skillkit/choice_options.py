"""What the model may choose among in the chat cascade's skill choice (``assistant.skillkit.skill_choice``):
the options (each registry skill, and the daemon's own actions: search memory, set a reminder, save a note),
their examples, and the fixed prompt and the JSON schema of an answer built from them.

The prompt is the same bytes for every message, so its evaluated state is reused; the schema offers one JSON
object per option (``{"skill": NAME, ...its arguments}``) or ``{"skill": "none"}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.llm.types import ChatMessage

if TYPE_CHECKING:
    from assistant.skillkit.registry import SkillRegistry
    from assistant.skillkit.spec import SkillSpec

NONE = "none"
# Skills of this distribution that neither write nor send anything (nor fetch an address from the message):
# the only registry skills a tainted conversation may reach. A plugin's skill is never on it.
READ_ONLY_SKILLS = frozenset({"time", "calc", "when"})


@dataclass(frozen=True)
class Option:
    """One thing the model may choose: its name, a one-line description, the arguments the model fills (name
    -> JSON schema), whether running it writes or sends anything, examples of messages that ask for it, and
    whether it takes the message's URL (filled by code, not copied by the model)."""

    name: str
    description: str
    arguments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    writes: bool = True
    examples: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    url: bool = False  # takes the message's (first) URL as its ``url`` argument; offered only with one
    quoted: tuple[str, ...] = ()  # arguments that must be the user's own words (``from_message``)


# The built-in actions besides the registry's skills (the composition root offers those whose part is on).
MEMORY = Option(
    "search_memory",
    "recall what the user told you before about their own life: their things, codes, people, plans",
    writes=False,
    examples=(("where did I say I parked?", {}), ("what's my bank's phone number?", {})),
)
REMINDER = Option(
    "set_reminder",
    "set a reminder, timer or alarm for a later time",
    {"when": {"type": "string", "maxLength": 60}, "what": {"type": "string", "maxLength": 80}},
    quoted=("what",),
    examples=(
        ("ping me at 6 to call mum", {"when": "at 6", "what": "call mum"}),
        ("get me up at 7 tomorrow", {"when": "tomorrow at 7", "what": "get up"}),
    ),
)
NOTE = Option(
    "save_note",
    "save a fact the user wants you to remember",
    {"note": {"type": "string", "maxLength": 200}},
    quoted=("note",),
    examples=(
        ("keep in mind that the wifi password is hunter2", {"note": "the wifi password is hunter2"}),
        ("store this: Tom's flat is number 5", {"note": "Tom's flat is number 5"}),
    ),
)

# Examples for this distribution's skills (a plugin's skill shows its own phrases). None of them is in the
# evaluation set (assistant/evals/choice.jsonl).
BUILTIN_EXAMPLES: dict[str, tuple[tuple[str, Mapping[str, Any]], ...]] = {
    "time": (("is it late already?", {}), ("which day is today?", {})),
    "digest": (("what's happening in the world today?", {}), ("any headlines from the Guardian?", {})),
    "seuss": (("give me the headlines as a silly rhyme", {}),),
    "summarize": (
        ("what is this article about: https://example.org/a", {}),
        ("main points of https://example.org/c", {}),
    ),
    "eli5": (("explain https://example.org/b to a kid", {}),),
    "calc": (("how much is 12 times 7", {"question": "12 * 7"}),),
    "when": (("which day of the week is 3 days from now", {"question": "in 3 days"}),),
}
# Clearer one-line descriptions of this distribution's skills than their docstrings' first sentences.
BUILTIN_DESCRIPTIONS = {
    "digest": "the news: new headlines from the user's feeds and news sites",
    "seuss": "the news headlines as Dr. Seuss style rhymes",
    "summarize": "summarize the web page at a URL in the message",
    "eli5": "explain the web page at a URL in the message in simple words",
    "time": "the current time or today's date",
    "calc": "work out a sum, a percentage or a unit conversion",
    "when": "work out a date or time relative to now: days until, in N days, weekday of a date",
}
NONE_EXAMPLES = (
    "why is the sky blue?",
    "write me a short poem about cats",
    "what should I cook tonight?",
    "what's the biggest city in Canada?",
    "I had a rough day",
    "how do plants grow?",
)


def _summary(text: str) -> str:
    """A docstring summary as one short line: its first sentence, parentheses out."""
    first = re.split(r"(?<=\w\w\w[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]
    return re.sub(r"\s*\([^)]*\)", "", first).rstrip(".").strip() or "a skill"


def _needed(spec: SkillSpec) -> dict[str, dict[str, Any]]:
    """The arguments a skill cannot do without: required ones, and text whose default is empty."""
    out: dict[str, dict[str, Any]] = {}
    for name, p in spec.params.items():
        if p.required or (p.type_name == "str" and p.default == ""):
            out[name] = {"type": "string", "maxLength": 160}
    return out


def registry_options(registry: SkillRegistry, read_only: Collection[str] = READ_ONLY_SKILLS) -> list[Option]:
    """One option per skill of the registry that can be chosen by its arguments (an argument that is not
    text cannot be filled from a message: such a skill is left to its shortcuts and commands)."""
    out = []
    for spec in registry.specs():
        if spec.name == NONE:
            continue
        needed = _needed(spec)
        if any(p.type_name != "str" for n, p in spec.params.items() if n in needed):
            continue
        url = needed.pop("url", None) is not None
        builtin = spec.origin == "builtin"
        examples = BUILTIN_EXAMPLES.get(spec.name) if builtin else None
        if examples is None:
            examples = tuple((p, {}) for p in spec.literal_phrases()[:2]) if not needed and not url else ()
        description = BUILTIN_DESCRIPTIONS.get(spec.name) if builtin else None
        writes = spec.name not in read_only
        out.append(
            Option(spec.name, description or _summary(spec.description), needed, writes, examples, url)
        )
    return out


def choice_prompt(options: Sequence[Option]) -> str:
    """The system prompt: the same bytes for every message (its evaluated state is reused)."""
    lines = [
        "You route a user's message to one of an assistant's skills. Answer with JSON naming the skill that "
        'does what the message asks, or {"skill": "none"} when none fits: chat, greetings, opinions, advice, '
        "general knowledge, writing, or anything else.",
        "",
        "Skills:",
    ]
    for o in options:
        args = f" (arguments: {', '.join(o.arguments)})" if o.arguments else ""
        lines.append(f"- {o.name}: {o.description}{args}")
    lines.append(f"- {NONE}: anything else")
    return "\n".join(lines)


def choice_examples(options: Sequence[Option]) -> list[tuple[str, str]]:
    """(message, answer) pairs: each option's examples, then the ones for none, interleaved so that no
    option's examples come last together."""
    shots = [
        (said, json.dumps({"skill": o.name, **ex}, ensure_ascii=False))
        for o in options
        for said, ex in o.examples
    ]
    nones = [(said, json.dumps({"skill": NONE})) for said in NONE_EXAMPLES]
    out: list[tuple[str, str]] = []
    step = max(1, len(shots) // max(1, len(nones)))
    for i in range(0, max(len(shots), 1), step):
        out += shots[i : i + step]
        if nones:
            out.append(nones.pop(0))
    return out + nones


def choice_prefix(options: Sequence[Option]) -> list[ChatMessage]:
    """The fixed part of every choice: the system prompt with the options and the examples (measured on
    qwen0.5b: examples written in the system prompt route better than examples given as earlier turns)."""
    lines = [choice_prompt(options), "", "Examples:"]
    lines += [f"{said} -> {answer}" for said, answer in choice_examples(options)]
    return [ChatMessage("system", "\n".join(lines))]


def choice_schema(options: Sequence[Option], urls: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema of an answer: ``{"skill": NAME, ...its arguments}`` for each option, or none. An
    option that takes the message's URL is offered only when the message has one."""
    branches: list[dict[str, Any]] = [_branch(NONE, {})]
    for o in options:
        if o.url and not urls:
            continue
        branches.append(_branch(o.name, {k: dict(v) for k, v in o.arguments.items()}))
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def _branch(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"skill": {"const": name}, **args},
        "required": ["skill", *args],
        "additionalProperties": False,
    }


