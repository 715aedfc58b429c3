"""The system prompt's evaluated state, from disk or built once and saved (assistant.llm.state_disk).

Every chat begins with the same tokens while its system text stays the same: the template's opening, the
system text (today's calendar and the persona's words) and the template's opening of the first user turn.
``anchor`` finds those tokens for a system text (the common start of two prompts that differ only in the
user's words, so any template works) and ``restore`` makes the live context hold them before the prompt's
prefill:

- already live (the previous chat had the same system text) or in a saved RAM state: nothing to do;
- on disk (an earlier run of the daemon, or earlier today): loaded in milliseconds;
- else evaluated now, alone, and its state written to disk on a background thread; the prefill then goes
  on from there. The first chat of a day (a new calendar line) or of another persona pays this once.

Only the daemon's own system texts are kept (``keep``: each persona's prompt of the day, registered by the
warm-up): a client's own system message may change with every request (a time stamp in it), and writing a
state of megabytes for each would wear an SD card for nothing. Other system texts are left to the live
context and the RAM cache, as before.

The daemon also calls ``LlamaBackend.warm_system_prompt`` at start for the default persona's prompt
(assistant.chat.prompt_warmup), so the first chat after a boot evaluates only what follows it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from assistant.llm.chat_templates import Formatter
from assistant.llm.state_disk import DiskState, DiskStates, StateKey
from assistant.llm.types import ChatMessage

log = logging.getLogger(__name__)

MIN_TOKENS = 16  # shorter prefixes are not worth a file
_ANCHORS = 16  # system texts whose anchor tokens are remembered

Source = Literal["none", "live", "ram", "disk", "built"]


@dataclass(frozen=True)
class LoadedState:
    """A disk state in the shape ``NativeLoop.load_state`` reads."""

    input_ids: Any
    n_tokens: int
    llama_state: bytes
    llama_state_size: int


class SystemStates:
    def __init__(
        self, disk: DiskStates, formatter: Formatter, model: str, runtime: str, context: str, template: str
    ) -> None:
        self.disk = disk
        self.formatter = formatter
        self.key_base = (model, runtime, context, template)
        self._anchors: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._anchors_lock = threading.Lock()  # requests find anchors before the model lock; so does warm-up
        self._kept: list[frozenset[str]] = [frozenset(), frozenset()]  # today's texts and the day before's
        self.last_source: Source = "none"

    def key(self, tokens: Sequence[int]) -> StateKey:
        return StateKey(*self.key_base, tokens=tuple(tokens))

    def keep(self, texts: Iterable[str]) -> None:
        """The system texts whose states are kept on disk from now on (with the previous call's: a request
        made just before midnight may still carry yesterday's calendar)."""
        with self._anchors_lock:
            self._kept = [frozenset(texts), self._kept[0]]

    def kept(self, text: str) -> bool:
        with self._anchors_lock:
            return any(text in k for k in self._kept)

    def anchor(self, messages: Sequence[ChatMessage], encode: Callable[[Any], list[int]]) -> tuple[int, ...]:
        """The tokens every prompt beginning with ``messages[0]`` (a system message whose state is kept)
        begins with; () for any other first message."""
        if not messages or messages[0].role != "system" or not self.kept(messages[0].content):
            return ()
        system = messages[0]
        with self._anchors_lock:
            found = self._anchors.get(system.content)
            if found is not None:
                self._anchors.move_to_end(system.content)
                return found
        a = encode(self.formatter([system, ChatMessage("user", "A")]))
        b = encode(self.formatter([system, ChatMessage("user", "B")]))
        found = tuple(a[: _common_prefix(a, b)])
        with self._anchors_lock:
            self._anchors[system.content] = found
            while len(self._anchors) > _ANCHORS:
                self._anchors.popitem(last=False)
        return found

    def restore(
        self,
        native: Any,
        tokens: Sequence[int],
        n_anchor: int,
        cancel: threading.Event,
        n_batch: int,
        ram_prefix: Callable[[Sequence[int]], int],
    ) -> Source:
        """Make the live context hold ``tokens[:n_anchor]`` (see the module's docstring); where it came from.
        ``ram_prefix(tokens)``: how many of the tokens a saved RAM state holds (0: none)."""
        self.last_source = source = self._restore(native, tokens, n_anchor, cancel, n_batch, ram_prefix)
        return source

    def _restore(
        self,
        native: Any,
        tokens: Sequence[int],
        n_anchor: int,
        cancel: threading.Event,
        n_batch: int,
        ram_prefix: Callable[[Sequence[int]], int],
    ) -> Source:
        if n_anchor < MIN_TOKENS:
            return "none"
        llm = native.llm
        anchor = list(tokens[:n_anchor])
        if _common_prefix(llm.input_ids[: llm.n_tokens], anchor) >= n_anchor:
            return "live"
        if ram_prefix(tokens) >= n_anchor:
            return "ram"
        key = self.key(anchor)
        state = self.disk.load(key)
        if state is not None:
            try:
                native.load_state(_loaded(state))
                log.info("prompt state of %d tokens loaded from disk", n_anchor)
                return "disk"
            except Exception:  # noqa: BLE001 - llama.cpp refused it: evaluate instead
                log.warning("llama.cpp refused the prompt state from disk; evaluating it", exc_info=True)
                self.disk.path_of(key).unlink(missing_ok=True)
        if not native.prefill(anchor, n_batch, cancel):
            return "none"
        data = native.save_state()
        self.disk.save_in_background(key, bytes(data.llama_state))
        return "built"


def _loaded(state: DiskState) -> LoadedState:
    return LoadedState(
        np.asarray(state.tokens, dtype=np.intc), len(state.tokens), state.data, len(state.data)
    )


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    same = np.asarray(a[:n], dtype=np.intc) == np.asarray(b[:n], dtype=np.intc)
    return n if bool(same.all()) else int(np.argmin(same))
