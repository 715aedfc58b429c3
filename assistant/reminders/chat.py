"""Reminders in any chat, answered by code (a collaborator of the rules layer, assistant.chat.rules):
create ("remind me in 20 minutes to take the pasta out"), list ("what reminders do I have?"), time left
("how long is left on the pasta timer?"), cancel ("cancel the rent reminder"), snooze ("snooze 10 minutes":
the one that fired last) and move ("move the call mum reminder to 10"). A question ("9 in the morning or in
the evening?") waits for the next message of the same conversation.

Only the user's own chat text reaches here: the rules layer runs on the newest user message, never on a
skill's output, a feed or a page, so text from outside cannot create, change or cancel a reminder.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from datetime import timedelta

from assistant.core.errors import AssistantError
from assistant.reminders.parse import Clarify, Parsed, describe_in, normalise
from assistant.reminders.service import ReminderService
from assistant.reminders.store import Reminder
from assistant.reminders.words import DATE, DAYWORD

MAX_PENDING = 256
_LIST = re.compile(
    r"^(?:what|which|show|list|any|do i have any|tell me)(?: are)?(?: all)?(?: my| the)?\s*"
    r"(?:(?:reminders?|timers?|alarms?)(?:\s+(?:and|or)\s+(?:reminders?|timers?|alarms?))*)"
    r"(?:\s+(?:do i have|have i (?:got|set)|are (?:set|running|there)|running|set))?(?: (?:today|now))?$"
    r"|^(?:list|show) (?:my )?(?:reminders|timers|alarms)$|^reminders$|^my reminders$"
)
_LEFT = re.compile(
    r"^(?:how (?:long|much time)(?: is| 's)? (?:left|remaining)|how long until|when (?:is|does|will) )"
    r"(?:\s*(?:on|for|until|of))?\s*(?P<what>.*?)(?:\s+(?:go(?:es)? off|ring|done|end|finish))?$"
)
_CANCEL = re.compile(
    r"^(?:please\s+)?(?:cancel|delete|remove|stop|clear|turn off|forget)\s+(?P<what>.*(?:reminder|timer|alarm)s?.*)$"
)
_SNOOZE = re.compile(
    r"^snooze(?:\s+(?:it|that))?(?:\s+(?:for\s+)?(?P<n>\d+|five|ten|fifteen|twenty|thirty)\s*(?:minutes?|mins?|m)?)?$"
)
_MOVE = re.compile(
    r"^(?:please\s+)?(?:move|change|push|reschedule|shift)\s+(?P<what>.+?(?:reminder|timer|alarm))\s+"
    r"(?:to|until|till|for)\s+(?P<to>.+)$"
)
_MORNING = re.compile(r"^(?:in the )?(?:morning|am|a\.m\.)$|^the morning( one)?$")
_EVENING = re.compile(
    r"^(?:in the )?(?:evening|afternoon|night|pm|p\.m\.)$|^the (?:evening|afternoon)( one)?$|^tonight$"
)
_WORDS = {"five": 5, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30}
_STRIP = re.compile(r"\b(?:the|my|a|an|reminder|reminders|timer|timers|alarm|alarms|to|for|about|on|all)\b")


class ReminderChat:
    def __init__(self, service: ReminderService) -> None:
        self.service = service
        self._asked: OrderedDict[str, str] = OrderedDict()  # conversation -> the request a question is about
        self._lock = threading.Lock()

    def answer(self, text: str, *, conversation_id: str) -> str | None:
        """The answer to a reminder request or question, or None when ``text`` is about something else."""
        s = normalise(text)
        with self._lock:
            asked = self._asked.pop(conversation_id, None)
        if asked is not None:
            follow = self._follow_up(asked, s)
            if follow is not None:
                return self._create(follow, conversation_id)
        try:
            return self._answer(text, s, conversation_id)
        except AssistantError as exc:
            return exc.message[0].upper() + exc.message[1:] + "."

    def _answer(self, text: str, s: str, conversation_id: str) -> str | None:
        if _LIST.match(s):
            return self._list()
        m = _SNOOZE.match(s)
        if m:
            n = m.group("n")
            minutes = 10 if n is None else (_WORDS[n] if n in _WORDS else int(n))
            r = self.service.snooze(None, minutes)
            return f"Snoozed: {self._label(r)} again at {self._at(r)}, in {minutes} minutes."
        m = _MOVE.match(s)
        if m:
            return self._move(m.group("what"), m.group("to"))
        m = _CANCEL.match(s)
        if m:
            return self._cancel(m.group("what"))
        m = _LEFT.match(s)
        if m and re.search(r"\b(?:timer|alarm|reminder)s?\b", s):
            return self._left(m.group("what"))
        if m and not m.group("what").strip() and self.service.reminders():  # "how long is left?"
            return self._left("")
        return self._create(text, conversation_id)

    # -- create ----------------------------------------------------------------------------------------

    def _create(self, text: str, conversation_id: str) -> str | None:
        parsed = self.service.parse(text)
        if parsed is None:
            return None
        if isinstance(parsed, Clarify):
            with self._lock:
                self._asked[conversation_id] = text
                while len(self._asked) > MAX_PENDING:
                    self._asked.popitem(last=False)
            return parsed.question
        return self.service.create_text(text, source="chat", conversation_id=conversation_id).text  # type: ignore[union-attr]

    def _follow_up(self, asked: str, s: str) -> str | None:
        """The request asked about, completed by the answer ("in the morning", "9pm", "at 7"), or None."""
        if _MORNING.match(s):
            return f"{asked} in the morning"
        if _EVENING.match(s):
            return f"{asked} in the evening"
        if re.fullmatch(r"(?:at\s+)?\d{1,2}(?::\d{2})?\s*(?:am|pm)|(?:at\s+)?\d{1,2}:\d{2}", s):
            return f"{asked} at {s.removeprefix('at ').strip()}"
        return None

    # -- read ------------------------------------------------------------------------------------------

    def _label(self, r: Reminder) -> str:
        if r.kind == "timer":
            return f"the {r.what} timer" if r.what else "the timer"
        if r.kind == "alarm":
            return "the alarm"
        return f"the reminder to {r.what}" if r.what else "the reminder"

    def _at(self, r: Reminder) -> str:
        from assistant.reminders.parse import describe_day

        now = self.service.clock.now()
        local = r.due_at.astimezone(self.service.zone).strftime("%H:%M")
        return f"{local} {describe_day(r.due_at, now, self.service.zone)}"

    def _list(self) -> str:
        active = self.service.reminders()
        if not active:
            return "You have no reminders, timers or alarms set."
        lines = [f"You have {len(active)}:"] + [f"- {self.service.describe(r)}" for r in active]
        return "\n".join(lines)

    def _matching(self, words: str, kinds: tuple[str, ...] = ()) -> list[Reminder]:
        said = normalise(words)
        kind = next((k for k in ("timer", "alarm", "reminder") if re.search(rf"\b{k}s?\b", said)), None)
        key = re.sub(r"\s+", " ", _STRIP.sub(" ", said)).strip()
        found = self.service.find(key) if key else self.service.reminders()
        if kind and kind != "reminder":
            found = [r for r in found if r.kind == kind]
        return found

    def _left(self, words: str) -> str:
        found = self._matching(words)
        if not found:
            return (
                f"There is no {words.strip() or 'timer'} running." if words.strip() else "Nothing is running."
            )
        now = self.service.clock.now()
        parts = [
            f"{describe_in(r.due_at - now)} left on {self._label(r)} (it goes off at {self._at(r)})"
            for r in found
        ]
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."

    # -- change ----------------------------------------------------------------------------------------

    def _one(self, words: str) -> Reminder | str:
        found = self._matching(words)
        if not found:
            return f"I have no pending reminder matching {words.strip().removeprefix('the ')!r}."
        if len(found) > 1:
            listing = "; ".join(self.service.describe(r) for r in found)
            return f"More than one matches {words.strip()!r}: {listing}. Say which (its words or its id)."
        return found[0]

    def _cancel(self, words: str) -> str:
        one = self._one(words)
        if isinstance(one, str):
            return one
        self.service.cancel(one.id)
        return f"Cancelled {self._label(one)} (it was set for {self._at(one)})."

    def _move(self, words: str, to: str) -> str:
        one = self._one(words)
        if isinstance(one, str):
            return one
        target = to.strip()
        if re.match(r"^\d", target):
            target = "at " + target
        plain = normalise(target)
        if not DAYWORD.search(plain) and not DATE.search(plain):
            target = f"{self._day_words(one)} {target}".strip()  # a time alone stays on the reminder's day
        parsed = self.service.parse(f"remind me {target} to x")
        if isinstance(parsed, Clarify):
            return parsed.question
        if not isinstance(parsed, Parsed):
            return f"I could not tell when {to!r} is."
        due = parsed.due
        moved = self.service.move(one.id, due)
        notes = f" ({'; '.join(parsed.notes)}.)" if parsed.notes else ""
        left = describe_in(moved.due_at - self.service.clock.now())
        return f"Moved {self._label(moved)} to {self._at(moved)}, in {left}.{notes}"

    def _day_words(self, r: Reminder) -> str:
        """ "", "tomorrow" or "on March 9": the reminder's own day, when it is not today."""
        zone = self.service.zone
        day, today = r.due_at.astimezone(zone).date(), self.service.clock.now().astimezone(zone).date()
        if day <= today:
            return ""
        if day == today + timedelta(days=1):
            return "tomorrow"
        return f"on {day.strftime('%B')} {day.day}"
