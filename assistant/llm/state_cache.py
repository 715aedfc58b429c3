"""The RAM cache of saved prompt states, with an age limit.

llama-cpp-python's ``LlamaRAMCache`` keeps states (the KV cache of a conversation's prompt, megabytes each)
until its byte capacity is reached, and then for the life of the process: after a busy hour the daemon
holds its whole ``prompt_cache_mb`` for good. This one also drops the states no request has used for
``max_idle`` seconds (``expire``), so a daemon left alone gives that memory back, and keeps one state per
conversation: a new state replaces the saved ones its tokens begin with (the turns before it), and the last
one saved for the same ``group`` (a chat's conversation id: its recalled memories go into the newest user
message only, so the next turn's prompt shares the history with the last state, not the whole of it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from llama_cpp import LlamaRAMCache


class ExpiringStateCache(LlamaRAMCache):
    def __init__(
        self, capacity_bytes: int, max_idle: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(capacity_bytes=capacity_bytes)
        self.max_idle = max_idle
        self.clock = clock
        self.used: dict[tuple[int, ...], float] = {}  # key -> when a request last read or wrote it
        self.groups: dict[str, tuple[int, ...]] = {}  # group (a conversation id) -> its last saved key

    def __getitem__(self, key: Sequence[int]) -> Any:
        found = self._find_longest_prefix_key(tuple(key))  # one scan of the saved keys, not the parent's second
        if found is None:
            raise KeyError("Key not found")
        self.cache_state.move_to_end(found)
        self.used[found] = self.clock()
        return self.cache_state[found]

    def __setitem__(self, key: Sequence[int], value: Any) -> None:
        self.put(key, value)

    def put(self, key: Sequence[int], value: Any, group: str | None = None) -> None:
        key = tuple(key)
        # A saved state whose tokens begin the new one's is never the longest match again (the next turn of a
        # conversation extends the last): one state per conversation, not one per turn.
        stale = [k for k in self.cache_state if len(k) <= len(key) and key[: len(k)] == k]
        if group is not None and self.groups.get(group) in self.cache_state:
            stale.append(self.groups[group])
        for old in stale:
            self.cache_state.pop(old, None)
        super().__setitem__(key, value)
        self.used[key] = self.clock()
        if group is not None:
            self.groups[group] = key
        self._forget_gone()

    def _forget_gone(self) -> None:
        """Ages and groups of states no longer saved (replaced, evicted for room, expired)."""
        for gone in self.used.keys() - self.cache_state.keys():
            del self.used[gone]
        for group in [g for g, k in self.groups.items() if k not in self.cache_state]:
            del self.groups[group]

    def expire(self) -> int:
        """Drop the states not used for ``max_idle`` seconds (none when it is 0); how many were dropped."""
        if self.max_idle <= 0:
            return 0
        cutoff = self.clock() - self.max_idle
        old = [k for k, t in self.used.items() if t <= cutoff]
        for key in old:
            self.cache_state.pop(key, None)
        self._forget_gone()
        return len(old)
