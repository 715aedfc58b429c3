"""Chat shortcuts (``assistant.chat.ShortcutHook``): ``/time``, ``/seuss``, ``/digest``, ``/<skill> k=v``
run a skill and answer with its output; "what time is it?" goes to the ``time`` skill by a cheap rule.
Anything else returns None and the model answers.

Only the user's own chat text can trigger a skill; text from feeds or web pages never reaches here.
"""

from __future__ import annotations

import logging
import re
import shlex
from typing import Any

from assistant.core.errors import AssistantError, QueueFull
from assistant.skillkit.registry import SkillRunner
from assistant.core.localtime import zone_for_place

log = logging.getLogger(__name__)

_SLASH = re.compile(r"^/([a-z][a-z0-9_-]*)(?:\s+(.*))?$", re.DOTALL)
_TIME_QUESTION = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|assistant)[, ]+)*"
    r"(?:(?:can|could|would) you )?(?:please )?"
    r"(?:what(?:'s| is) the (?:current )?time|what time is it|what time it is|tell me the time"
    r"|do you (?:know|have) (?:what time it is|the time)|what(?:'s| is) the time now|current time|time now"
    r"|what's the time)"
    r"(?: (?:now|right now|please))*"
    r"(?: in ([a-z][a-z _/-]{1,40}?))?"
    r"(?: (?:now|right now|please))*[?.! ]*$"
)
HELP_COMMANDS = ("help", "skills")


class SkillShortcuts:
    def __init__(self, runner: SkillRunner) -> None:
        self.runner = runner

    def answer(self, text: str, *, conversation_id: str) -> str | None:
        request = self.match(text)
        if request is None:
            return None
        name, args = request
        if name in HELP_COMMANDS and name not in self.runner.registry:
            return self._help()
        try:
            result = self.runner.run(name, args, trigger="chat")
        except QueueFull:
            raise  # a clean 429 with Retry-After
        except AssistantError as exc:
            return f"/{name}: {exc.message}"
        return result.text

    def match(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """(skill name, args) for a slash command of a known skill or a time question, else None."""
        stripped = text.strip()
        m = _SLASH.match(stripped)
        if m:
            name = m.group(1)
            if name not in self.runner.registry and name not in HELP_COMMANDS:
                return None
            return name, self._args(name, m.group(2) or "")
        q = _TIME_QUESTION.match(re.sub(r"\s+", " ", stripped.lower()))
        if q and "time" in self.runner.registry:
            place = q.group(1)
            if place is None:
                return "time", {}
            zone = zone_for_place(place)
            return ("time", {"tz": zone}) if zone else None  # an unknown place: let the model answer
        return None

    def _args(self, name: str, rest: str) -> dict[str, Any]:
        """``k=v`` words become arguments; other words go to the skill's first parameter."""
        try:
            words = shlex.split(rest)
        except ValueError:
            words = rest.split()
        args: dict[str, Any] = {}
        free: list[str] = []
        for word in words:
            key, eq, value = word.partition("=")
            if eq and key:
                args[key] = value
            else:
                free.append(word)
        if free and name in self.runner.registry:
            params = list(self.runner.registry.get(name).params)
            if params and params[0] not in args:
                args[params[0]] = " ".join(free)
            else:
                args["_"] = " ".join(free)  # reported as an unknown parameter
        return args

    def _help(self) -> str:
        lines = ["Skills you can run here:"]
        for spec in self.runner.registry.describe():
            params = " ".join(f"{k}=…" for k in spec["params"])
            lines.append(f"/{spec['name']} {params}".rstrip() + f" — {spec['description']}")
        return "\n".join(lines)
