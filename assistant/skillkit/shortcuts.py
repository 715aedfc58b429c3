"""Chat shortcuts (``assistant.chat.ShortcutHook``): ``/<skill> k=v`` (a skill's name or its declared slash
command) runs the skill and answers with its output, and so does a message that is one of the phrases a
skill declares ("what time is it in Tokyo?" for ``time``). Anything else returns None and the model
answers.

Nothing here knows a particular skill: every command and phrase comes from the skills in the registry, so
a plugin's skill gets its shortcuts by declaring them.

Only the user's own chat text can trigger a skill; text from feeds or web pages never reaches here.
"""

from __future__ import annotations

import logging
import re
import shlex
from typing import Any

from assistant.chat.orchestrator import ShortcutAnswer
from assistant.core.errors import AssistantError, QueueFull
from assistant.skillkit.phrases import normalize_phrase
from assistant.skillkit.registry import SkillRunner

log = logging.getLogger(__name__)

_SLASH = re.compile(r"^/([a-z][a-z0-9_-]*)(?:\s+(.*))?$", re.DOTALL)
# Greetings and politeness around a request: "Hey, could you tell me the time please?" asks for
# "tell me the time".
_LEADING = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|assistant|please|(?:can|could|would|will) you)\b[,!]?\s*)+",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"(?:[\s,]+(?:now|right now|please|for me|thanks|thank you))+$", re.IGNORECASE)
HELP_COMMANDS = ("help", "skills")


def request_text(text: str) -> str:
    """The request inside a chat message: greetings, "could you", "please", "right now" and end
    punctuation removed; case kept (captured words keep their case)."""
    core = normalize_phrase(text)
    core = _LEADING.sub("", core)
    core = normalize_phrase(_TRAILING.sub("", core))
    return core


class SkillShortcuts:
    def __init__(self, runner: SkillRunner) -> None:
        self.runner = runner

    def answer(self, text: str, *, conversation_id: str) -> ShortcutAnswer | str | None:
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
        return ShortcutAnswer(result.text, untrusted=self.runner.registry.get(name).untrusted_output)

    def match(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """(skill name, args) for a slash command of a known skill or one of a skill's phrases, else None."""
        stripped = text.strip()
        m = _SLASH.match(stripped)
        if m:
            word = m.group(1)
            spec = self.runner.registry.by_command(word)
            if spec is None:
                return (word, {}) if word in HELP_COMMANDS else None
            return spec.name, self._args(spec.name, m.group(2) or "")
        if len(stripped) > 300 or "\n" in stripped:
            return None  # a phrase is one short line
        request = request_text(stripped)
        if not request:
            return None
        for spec in self.runner.registry.specs():  # built-ins first: they keep their phrases
            try:
                args = spec.phrase_args(request)
            except Exception:  # noqa: BLE001 - one skill's broken from_phrase must not break chat
                log.exception("matching the phrases of skill %s failed", spec.name)
                continue
            if args is not None:
                return spec.name, args
        return None

    def _args(self, name: str, rest: str) -> dict[str, Any]:
        """``k=v`` words (``k`` a parameter-like name) become arguments; other words, such as a URL with a
        query string, go to the skill's first parameter."""
        try:
            words = shlex.split(rest)
        except ValueError:
            words = rest.split()
        args: dict[str, Any] = {}
        free: list[str] = []
        for word in words:
            key, eq, value = word.partition("=")
            if eq and key.isidentifier():
                args[key] = value
            else:
                free.append(word)
        if free:
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
            line = f"{spec['slash']} {params}".rstrip() + f" — {spec['description']}"
            said = [p for p in spec["phrases"] if "{" not in p][:1]
            if said:
                line += f' (or say "{said[0]}")'
            lines.append(line)
        return "\n".join(lines)
