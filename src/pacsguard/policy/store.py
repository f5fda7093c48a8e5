"""``PolicyStore``: the live policy of a site, reloaded and swapped atomically.

The store is given a loader (``pacsguard.app.load_site_policy`` reads a site
directory); a reload that meets a bad file keeps the previous compiled set and reports
the problems.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pacsguard.clock import Clock
from pacsguard.errors import ConfigError, Problem
from pacsguard.policy.compiler import CompiledPolicy
from pacsguard.policy.decide import DecisionPoint

__all__ = ["PolicyStore", "ReloadResult"]


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``ok``, or the problems that kept the old policy in place."""

    ok: bool
    problems: tuple[Problem, ...] = ()


class PolicyStore:
    """Holds the current ``DecisionPoint``; ``reload`` swaps in a new one or keeps the old."""

    def __init__(self, loader: Callable[[], CompiledPolicy], clock: Clock) -> None:
        """Load the policy once; raises ``ConfigError`` when it is not valid at start."""
        self._loader = loader
        self._clock = clock
        self._lock = threading.Lock()
        self._point = DecisionPoint(loader(), clock)

    @property
    def point(self) -> DecisionPoint:
        """The decision point in force (one reference read: always a complete policy)."""
        return self._point

    def reload(self) -> ReloadResult:
        """Load again; on any problem keep the current policy and return the problems."""
        with self._lock:
            try:
                compiled = self._loader()
            except ConfigError as exc:
                return ReloadResult(False, tuple(exc.problems))
            self._point = DecisionPoint(compiled, self._clock)
            return ReloadResult(True)
