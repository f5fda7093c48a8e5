"""Keeping Python's cycle collector out of the hot paths (bulk import, verify, serving).

The collector runs a pass every 700 container allocations (net) and, every so often,
rescans every live object: every module, class and function, and whatever batches are
in flight. The audit paths allocate a dozen short-lived containers per event, so with
the defaults the collector took 10-20% of their CPU (measured in ``bench/``: 1.4-1.7 s
of the 7-8 s an import of 50,000 events took; 10-15% of ``verify``; 0.8-1.8 s per
20,000 ATNA messages received). Nothing these paths make forms cycles that must be
freed promptly, so collecting rarely loses nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "few_collections", "paused"]

YOUNG_THRESHOLD = 50_000  # allocations between passes over the youngest generation (default 700)


@contextmanager
def few_collections() -> Iterator[None]:
    """Freeze what exists now (it is never rescanned) and collect the youngest generation
    every ``YOUNG_THRESHOLD`` allocations; both are process-wide and restored on exit. A
    freeze someone else made is left alone. For long runs: an import, ``pacsguard serve``.
    """
    thresholds = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freeze:
            gc.unfreeze()


@contextmanager
def paused() -> Iterator[None]:
    """No collection at all for a bounded piece of work that makes no cycles (one range of
    rows in ``verify``); the collector's state is restored on exit."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
