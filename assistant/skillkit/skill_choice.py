"""The middle step of the chat cascade: when no rule and no skill shortcut matched, the model chooses one of
the daemon's skills, or "none" (plain chat), with a grammar-constrained answer of a few tokens.

The choice is one short model call: a system prompt that lists the options (a name, a one-line description,
two examples each) and is the same bytes for every message (its evaluated state is saved under the group
``skill-choice``, so the next choice evaluates only the new message), the user's newest message (never the
history, never recalled or fetched text), and a GBNF grammar (``schema_grammar`` over an ``anyOf`` of one
JSON object per offered option) that allows exactly ``{"skill": "<name>", <its arguments>}``. The skill then
runs by code, as a shortcut does: the facts come from the skill, the model only chose it.

Options (``assistant.skillkit.choice_options``): each skill of the registry (its docstring's summary is the
description; a parameter it cannot do without, required or text whose default is empty, is an argument the
model fills; a ``url`` parameter is filled by code with the message's URL, and the skill is not offered
without one), and the daemon's own actions given by the composition root: ``search_memory`` (look up what the
user said: plain chat with recall), ``set_reminder`` (``{"when", "what"}`` handed to the reminders
collaborator as "remind me WHEN to WHAT") and ``save_note`` (``{"note"}`` handed to the rules layer as
"remember that NOTE"). What a reminder or a note stores must be the user's own words (``from_message``), never
what the model made up.

Safety: an option that writes or sends anything (``writes``: reminders, notes, a skill not known to be
read-only, which also covers fetching a URL and storing a page's summary) is offered only when the
conversation is untainted; in a conversation that holds untrusted text the grammar offers only the
read-only options (the prompt stays the same bytes), and a name outside the offer is refused after parsing
as well. The model reads only the user's newest message, so text from a page or a headline in the history
cannot steer the choice in the first place.

Cost: ``worth_asking`` skips the model for small talk (greetings, thanks, "how are you"), and for long or
multi-line text without a URL (a pasted text to discuss, a writing request): those go straight to plain
chat. ``skills.choice = "auto"`` leaves the step off with a model measured to route worse than the rules
alone (``ROUTES_WORSE``). The figures per model are in docs/skills.md (``assistant eval choice``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.chat.orchestrator import ShortcutAnswer
from assistant.core.errors import AssistantError, QueueFull
from assistant.llm.bundled import BUNDLED
from assistant.llm.json_grammar import UnsupportedSchema, schema_grammar
from assistant.llm.types import ChatMessage, Completion, GenerationParams
from assistant.skillkit.choice_options import (
    MEMORY,
    NONE,
    NOTE,
    REMINDER,
    Option,
    choice_prefix,
    choice_schema,
    registry_options,
)
from memory.personal import personal_question

if TYPE_CHECKING:
    from assistant.skillkit.registry import SkillRunner

log = logging.getLogger(__name__)

STATE_GROUP = "skill-choice"  # the saved prompt state of the fixed prefix, replaced by each choice
MAX_TOKENS = 64
MAX_TEXT = 300  # longer messages without a URL are texts to discuss, not requests for a skill

Generate = Callable[[list[ChatMessage], GenerationParams], Completion]
# Runs a chosen option: its arguments and the conversation -> the answer (None: plain chat answers).
Runner = Callable[[Mapping[str, Any], str], ShortcutAnswer | str | None]

_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_SMALL_TALK = re.compile(
    r"^(?:(?:hi|hey|hello|hiya|yo|howdy|greetings|good (?:morning|afternoon|evening|night)|morning|evening|"
    r"thanks?|thank you|thx|cheers|ok(?:ay)?|cool|nice|great|awesome|sure|yes|yeah|yep|no|nope|nah|bye|goodbye|"
    r"see you|see ya|lol|haha|wow|oops|sorry|never ?mind|nvm|well done|good job|you too|same to you|"
    r"how are you(?: doing| today)?|how(?:'s| is) it going|what'?s up|sup|who are you|what(?:'s| is) your name|"
    r"are you there|you there)"
    r"(?:\s+(?:there|again|so much|a lot|mate|buddy|friend|assistant|to you|too))*[\s,.!?:)(;-]*)+$",
    re.IGNORECASE,
)


def worth_asking(text: str) -> bool:
    """Whether the model should choose for ``text``: not for small talk, nor for long or multi-line text
    without a URL (a text to discuss goes to plain chat)."""
    stripped = text.strip()
    if not stripped or _SMALL_TALK.match(stripped):
        return False
    if _URL.search(stripped):
        return True
    return len(stripped) <= MAX_TEXT and "\n" not in stripped


def urls_in(text: str) -> list[str]:
    """The http(s) addresses written in ``text``, in order, without trailing punctuation, once each."""
    return list(dict.fromkeys(u.rstrip(".,;:!?") for u in _URL.findall(text)))


@dataclass(frozen=True)
class Choice:
    """What the model chose (``none`` when it was not asked or chose nothing), with the arguments, whether
    the model was asked at all, and the seconds the choice took."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    asked: bool = False
    seconds: float = 0.0


class SkillChoice:
    """The model's constrained choice among ``options`` (``choose``) and running what it chose (``answer``,
    the orchestrator's ``SkillChoiceHook``) with ``runners`` (option name -> runner)."""

    def __init__(
        self,
        generate: Generate,
        options: Sequence[Option],
        runners: Mapping[str, Runner],
        *,
        max_tokens: int = MAX_TOKENS,
        seed: int = 0,
    ) -> None:
        self.generate = generate
        self.options = [o for o in options if o.name in runners]
        self.runners = dict(runners)
        self.max_tokens = max_tokens
        self.seed = seed
        self.by_name = {o.name: o for o in self.options}
        self.prefix = choice_prefix(self.options)
        self.prompt = self.prefix[0].content

    def offered(self, *, tainted: bool) -> list[Option]:
        """The options the grammar allows: every one, or only the read-only ones in a tainted conversation."""
        return [o for o in self.options if not (tainted and o.writes)]

    def choose(self, text: str, *, tainted: bool = False) -> Choice:
        """The model's choice for the user's newest message ``text`` (``none`` without asking for small
        talk; ``none`` when the answer does not parse or names what was not offered)."""
        if not worth_asking(text) or personal_question(text) is not None:
            # A question about the user's own life is for their notes: plain chat recalls them (or says
            # that nothing they said answers it); qwen1.5b chose the time skill for "Did I pay the bill?".
            return Choice(NONE)
        offered = self.offered(tainted=tainted)
        urls = urls_in(text)
        try:
            schema = choice_schema(offered, urls)
            grammar = schema_grammar(schema)
        except UnsupportedSchema:
            log.exception("the skill choice grammar could not be built; plain chat answers")
            return Choice(NONE)
        # The embedded model follows the grammar; a remote server gets the same schema as response_format.
        fmt = {
            "type": "json_schema",
            "json_schema": {"name": "skill_choice", "schema": schema, "strict": True},
        }
        params = GenerationParams(
            max_tokens=self.max_tokens,
            temperature=0.0,
            seed=self.seed,
            grammar=grammar,
            response_format=json.dumps(fmt),
            state_group=STATE_GROUP,
        )
        messages = [*self.prefix, ChatMessage("user", text.strip()[:2000])]
        started = time.perf_counter()
        completion = self.generate(messages, params)
        seconds = time.perf_counter() - started
        name, args = parse_choice(completion.text, {o.name: o for o in offered if urls or not o.url})
        option = self.by_name.get(name)
        if option is not None and not all(from_message(str(args[k]), text) for k in option.quoted):
            log.info("skill choice %s refused: %s is not the user's own words", name, dict(args))
            name, args = NONE, {}
        elif option is not None and not all(numbers_said(str(v), text) for v in args.values()):
            log.info("skill choice %s refused: %s has a number the user did not say", name, dict(args))
            name, args = NONE, {}
        elif option is not None and option.url:
            args["url"] = urls[0]
        return Choice(name, args, asked=True, seconds=seconds)

    def answer(self, text: str, *, conversation_id: str, tainted: bool) -> ShortcutAnswer | str | None:
        """Run the chosen option (None: plain chat answers, also when the chosen skill fails: the user did
        not name it, so its error message would be no answer)."""
        choice = self.choose(text, tainted=tainted)
        if choice.name == NONE:
            return None
        log.info("skill choice: %s %s", choice.name, dict(choice.args))
        try:
            return self.runners[choice.name](choice.args, conversation_id)
        except QueueFull:
            raise
        except AssistantError as exc:
            log.warning("the chosen skill %s failed (%s); plain chat answers", choice.name, exc.message)
            return None


_WORD = re.compile(r"[^\W_]+")
QUOTE_SHARE = 0.75  # of an argument's words that must be in the message


def from_message(value: str, text: str) -> bool:
    """Whether ``value`` is made of the message's own words (three in four at least, and one at least): what a
    reminder or a note stores is what the user said, never what the model made up (Qwen2.5 0.5B answered
    "what's my wifi password again?" with a note copied from the prompt's example)."""
    said = {w.lower() for w in _WORD.findall(text)}
    words = [w.lower() for w in _WORD.findall(value)]
    return bool(words) and sum(w in said for w in words) >= QUOTE_SHARE * len(words)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NUMBER_WORDS: dict[str, tuple[float, ...]] = {
    w: (float(n),)
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {w: (10.0 * n,) for n, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)} | {
    "hundred": (100.0,),
    "thousand": (1000.0,),
    "dozen": (12.0,),
    "half": (30.0, 0.5),  # "half an hour", "half past 7"
    "quarter": (15.0, 0.25, 45.0),  # "a quarter of an hour", "quarter past/to"
}
_ONE_UNIT = re.compile(r"\b(?:a|an)\s+(?:second|minute|hour|day|week|fortnight|month|year)\b", re.IGNORECASE)


def _said_numbers(text: str) -> set[float]:
    said = {float(n) for n in _NUMBER.findall(text)}
    said |= {v for w in _WORD.findall(text.lower()) for v in _NUMBER_WORDS.get(w, ())}
    if _ONE_UNIT.search(text):
        said.add(1.0)  # "in an hour" -> "in 1 hour"
    if "%" in text or re.search(r"\bper ?cent\b", text, re.IGNORECASE):
        said |= {v / 100 for v in said}  # "a 20% tip" -> "45 * 0.2"
    return said


def numbers_said(value: str, text: str) -> bool:
    """Whether every number in ``value`` (an argument the model filled in) is one the message has, in digits,
    spelled out, as "an hour" or as a percentage: the skill computes from the user's request, never from a
    number the model made up (qwen1.5b turned "When do I take my blood pressure pill?" into the date question
    "in 1 day", and "how many days are in February this year" into "in 2023"). Zero needs no saying ("at
    10:00" for "at 10")."""
    said = _said_numbers(text)
    return all(float(n) == 0 or float(n) in said for n in _NUMBER.findall(value))


def parse_choice(text: str, offered: Mapping[str, Option]) -> tuple[str, dict[str, Any]]:
    """(name, arguments) of an answer, or (``none``, {}) when it does not parse or names an option that was
    not offered (a remote backend ignores the grammar)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return NONE, {}
    if not isinstance(data, dict) or not isinstance(data.get("skill"), str):
        return NONE, {}
    name = data.pop("skill")
    option = offered.get(name)
    if option is None or set(data) != set(option.arguments):
        return NONE, {}
    return name, data


def skill_runner(runner: SkillRunner, name: str) -> Runner:
    """Runs a registry skill from chat; its answer is untrusted when its output is."""
    untrusted = runner.registry.get(name).untrusted_output

    def run(args: Mapping[str, Any], conversation_id: str) -> ShortcutAnswer | None:
        result = runner.run(name, dict(args), trigger="chat")
        if not result.notify and not result.data:
            return (
                None  # the skill's "I cannot work that out" (calc, when): the user did not ask for it by name
            )
        return ShortcutAnswer(result.text, untrusted=untrusted)

    return run


def said_runner(answer: Callable[[str, str], str | None], template: str) -> Runner:
    """Runs an action by saying it the way its rule understands (``template`` filled with the arguments)."""

    def run(args: Mapping[str, Any], conversation_id: str) -> str | None:
        words = {k: " ".join(str(v).split()) for k, v in args.items()}
        return answer(template.format(**words), conversation_id)

    return run


def recall_runner(args: Mapping[str, Any], conversation_id: str) -> None:
    """Looking up memory is what plain chat does: recall runs on every model-answered turn."""
    return None


# Models measured to route worse with the choice than the rules alone (``assistant eval choice``, docs/skills.md):
# with ``skills.choice = "auto"`` a daemon running one of them has no choice step. SmolLM2 routes fewer right
# on the confirm split; the 0.5B routes 10 points more right there but sends 23 % to a wrong skill (3 % with
# the rules alone) and adds about 0.8 s to every chat turn: a wrong skill's answer is worse than a chat answer.
ROUTES_WORSE = frozenset({Path(BUNDLED[name].file_name).stem for name in ("smollm2", "qwen0.5b")})


def choice_enabled(setting: bool | str, model_name: str) -> bool:
    """``skills.choice``: true, false, or "auto" (on unless the model routes worse than the rules alone: on with
    the 1.5B, a remote server or a GGUF of the user's own, off with SmolLM2 and the 0.5B)."""
    if setting == "auto":
        return model_name not in ROUTES_WORSE
    return bool(setting)


def build_skill_choice(
    generate: Generate,
    *,
    skills: SkillRunner | None = None,
    memory: bool = False,
    remind: Callable[[str, str], str | None] | None = None,
    note: Callable[[str, str], str | None] | None = None,
    seed: int = 0,
) -> SkillChoice:
    """The choice among the registry's skills and the daemon's actions whose parts are on: ``remind`` and
    ``note`` take (text, conversation id) the way the reminders and the rules layer answer a message."""
    options: list[Option] = []
    runners: dict[str, Runner] = {}
    if skills is not None:
        for o in registry_options(skills.registry):
            options.append(o)
            runners[o.name] = skill_runner(skills, o.name)
    if memory:
        options.append(MEMORY)
        runners[MEMORY.name] = recall_runner
    if remind is not None:
        options.append(REMINDER)
        runners[REMINDER.name] = said_runner(remind, "remind me {when} to {what}")
    if note is not None:
        options.append(NOTE)
        runners[NOTE.name] = said_runner(note, "remember that {note}")
    return SkillChoice(generate, options, runners, seed=seed)
