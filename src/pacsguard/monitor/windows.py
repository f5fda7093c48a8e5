"""Bounded per-key state: a capped key map that evicts the least recently used key, and a
sliding window of (time, seq, value) that keeps counts, distinct counts and sums.

Times are POSIX seconds taken from the events, never from a wall clock. Everything here
snapshots to JSON-able lists and restores from them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["KeyedState", "Window"]

S = TypeVar("S")


class KeyedState(Generic[S]):
    """Per-key state, at most ``max_keys`` keys; a new key evicts the least recently used one."""

    __slots__ = ("_data", "_factory", "evictions", "max_keys")

    def __init__(self, max_keys: int, factory: Callable[[], S]) -> None:
        self._data: dict[str, S] = {}
        self._factory = factory
        self.max_keys = max_keys
        self.evictions = 0

    def get(self, key: str) -> S:
        """The state of ``key``, created (and the oldest key evicted if full) when new."""
        data = self._data
        state = data.pop(key, None)
        if state is None:
            if len(data) >= self.max_keys:
                del data[next(iter(data))]
                self.evictions += 1
            state = self._factory()
        data[key] = state
        return state

    def peek(self, key: str) -> S | None:
        return self._data.get(key)

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[str, S]]:
        return iter(self._data.items())

    def put(self, key: str, state: S) -> None:
        """Insert restored state as the most recently used key."""
        self._data.pop(key, None)
        self._data[key] = state


class Window:
    """Events of one key in a sliding time window; at most ``max_events`` are kept.

    ``count`` is the number of events, ``distinct`` the number of distinct values and
    ``total`` the sum of numeric values currently in the window. One deque of
    ``(time, seq, value)`` per key keeps the memory per key small.
    """

    __slots__ = ("counts", "dropped", "items", "max_events", "total")

    def __init__(self, max_events: int) -> None:
        self.items: deque[tuple[float, int, Any]] = deque()
        self.counts: dict[Any, int] = {}
        self.total = 0.0
        self.max_events = max_events
        self.dropped = 0

    def add(self, t: float, seq: int, value: Any = None) -> None:
        """Append an event; drops the oldest one when the window is full."""
        if len(self.items) >= self.max_events:
            self._pop()
            self.dropped += 1
        self.items.append((t, seq, value))
        if value is not None:
            self.counts[value] = self.counts.get(value, 0) + 1
            if type(value) is int or type(value) is float:
                self.total += value

    def expire(self, before: float) -> int:
        """Drop events older than ``before``; returns how many were dropped."""
        items = self.items
        n = 0
        while items and items[0][0] < before:
            self._pop()
            n += 1
        return n

    def _pop(self) -> None:
        value = self.items.popleft()[2]
        if value is not None:
            left = self.counts[value] - 1
            if left:
                self.counts[value] = left
            else:
                del self.counts[value]
            if type(value) is int or type(value) is float:
                self.total -= value

    def clear(self) -> None:
        self.items.clear()
        self.counts.clear()
        self.total = 0.0

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def distinct(self) -> int:
        return len(self.counts)

    def first_time(self) -> float:
        return self.items[0][0]

    def evidence(self, limit: int) -> tuple[int, ...]:
        """The most recent ``limit`` sequence numbers, oldest first."""
        items = self.items
        skip = max(len(items) - limit, 0)
        return tuple(item[1] for i, item in enumerate(items) if i >= skip)

    def snapshot(self) -> list[Any]:
        return [[i[0] for i in self.items], [i[1] for i in self.items], [i[2] for i in self.items], self.dropped]

    @classmethod
    def restore(cls, data: list[Any], max_events: int) -> Window:
        window = cls(max_events)
        for t, seq, value in zip(data[0], data[1], data[2], strict=True):
            window.add(float(t), int(seq), value)
        window.dropped = int(data[3])
        return window
