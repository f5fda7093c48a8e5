"""``verify``: recompute the whole log from storage and name the first sequence number that differs.

Checks, in order of sequence number: every event is present (no gap), its canonical
bytes hash to the stored leaf hash, its canonical bytes name the seq it is stored at
(reordering and insertion show here), and the searchable columns agree with the
canonical bytes. Then the recomputed tree is compared with the stored tree nodes, and
every stored signed head is checked: a valid signature by the site key, a size that
exists, and a root equal to the recomputed root at that size.

A corrupted database ends with a ``VerifyReport``, never an exception.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit import merkle
from pacsguard.audit._rowcheck import Chunk, Finding, check_range, check_rows, read_range
from pacsguard.audit.heads import SignedHead, verify_head
from pacsguard.audit.store import AuditStore, db_reason
from pacsguard.storage.audit_tables import audit_events, audit_nodes

__all__ = ["Finding", "VerifyReport", "verify"]  # Finding is defined in _rowcheck

Progress = Callable[[int, int], None]
_CHUNK = 50_000
_PARALLEL_FROM = 200_000


@dataclass(slots=True)
class VerifyReport:
    """The outcome of ``verify``: events and heads checked, and what was found."""

    size: int = 0
    heads_checked: int = 0
    root: bytes = merkle.EMPTY_ROOT
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_seq(self) -> int | None:
        """The lowest sequence number at which anything differs, or ``None`` if all verifies."""
        return min((f.seq for f in self.findings), default=None)

    def first(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.seq, default=None)


def verify(
    engine: Engine,
    public_key: Ed25519PublicKey | None,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify the audit log in ``engine``; heads are checked against ``public_key``.

    ``workers`` processes check event rows in parallel (default: one per CPU, up to 4,
    for logs of 200,000 events or more). Never raises for a corrupted or unreadable
    database: problems become findings.
    """
    report = VerifyReport()
    try:
        heads = AuditStore(engine).heads()
        with engine.connect() as conn:
            last = conn.execute(select(func.max(audit_events.c.seq))).scalar()
    except SQLAlchemyError as exc:
        report.findings.append(Finding(0, "unreadable", f"the audit tables cannot be read: {db_reason(exc)}"))
        return report
    end = 0 if last is None else int(last) + 1
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if end >= _PARALLEL_FROM else 1
    scan = _Scan({h.size for h in heads})
    try:
        scan.run(_chunks(engine, end, workers), end, report, progress)
    except (SQLAlchemyError, OSError, BrokenProcessPool) as exc:
        report.findings.append(Finding(scan.edge.size, "unreadable", f"reading failed: {db_reason(exc)}"))
        scan.complete = False
    report.size = scan.edge.size
    report.root = scan.edge.root()
    _check_heads(heads, scan, public_key, report)
    if scan.complete:
        try:
            _check_nodes(engine, scan, report)
        except SQLAlchemyError as exc:
            report.findings.append(Finding(0, "unreadable", f"the tree nodes cannot be read: {db_reason(exc)}"))
    return report


def _chunks(engine: Engine, end: int, workers: int) -> Iterator[Chunk]:
    ranges = [(lo, min(lo + _CHUNK, end)) for lo in range(0, end, _CHUNK)]
    if workers <= 1:
        for lo, hi in ranges:
            yield check_rows(read_range(engine, lo, hi), lo, hi)
        return
    url = engine.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(check_range, url, lo, hi) for lo, hi in ranges]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


class _Scan:
    """Feeds checked leaf hashes to the tree in order, until the first bad event."""

    def __init__(self, head_sizes: set[int]) -> None:
        self.edge = merkle.RightEdge()
        self.head_sizes = head_sizes
        self.roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        self.levels: list[list[bytes]] = [[]]
        self.complete = True  # False once an event finding stopped the scan

    def run(self, chunks: Iterator[Chunk], end: int, report: VerifyReport, progress: Progress | None) -> None:
        try:
            for chunk in chunks:
                leaves = chunk.leaves
                for offset in range(0, len(leaves), 32):
                    self._add(leaves[offset : offset + 32])
                if progress is not None:
                    progress(self.edge.size, end)
                if chunk.finding is not None:
                    report.findings.append(chunk.finding)
                    self.complete = False
                    return
        finally:
            if isinstance(chunks, Generator):
                chunks.close()

    def _add(self, leaf: bytes) -> None:
        levels = self.levels
        for level, _index, h in self.edge.append(leaf):
            if len(levels) <= level:
                levels.append([])
            levels[level].append(h)
        if self.edge.size in self.head_sizes:
            self.roots[self.edge.size] = self.edge.root()


def _check_nodes(engine: Engine, scan: _Scan, report: VerifyReport) -> None:
    """Compare the stored complete-subtree hashes (what proofs are made of) with the recomputed ones."""
    size, levels = scan.edge.size, scan.levels
    found: list[Finding] = []
    following: dict[int, int] = defaultdict(int)  # the next index expected, per level
    query = select(audit_nodes.c.level, audit_nodes.c.idx, audit_nodes.c.hash).order_by(
        audit_nodes.c.level, audit_nodes.c.idx
    )
    with engine.connect() as conn, conn.execution_options(yield_per=_CHUNK).execute(query) as result:
        for raw_level, raw_idx, h in result:
            level, idx = int(raw_level), int(raw_idx)
            ours = levels[level] if 0 < level < len(levels) else []
            if idx != following[level] and following[level] < len(ours):
                found.append(_missing_node(level, following[level]))
            if idx >= len(ours):
                last = ((idx + 1) << level) - 1
                found.append(Finding(max(idx << level, size), "node", f"a stored tree node covers events up to {last}"))
            elif bytes(h) != ours[idx]:
                found.append(Finding(idx << level, "node", f"the tree node at level {level}, index {idx} is wrong"))
            following[level] = idx + 1
            if found:
                break
    if not found:
        found = [_missing_node(lv, following[lv]) for lv in range(1, len(levels)) if following[lv] < len(levels[lv])]
    if found:
        report.findings.append(min(found, key=lambda f: f.seq))


def _missing_node(level: int, idx: int) -> Finding:
    last = ((idx + 1) << level) - 1
    return Finding(last, "node", f"the tree node completed by event {last} (level {level}, index {idx}) is not stored")


def _check_heads(heads: list[SignedHead], scan: _Scan, key: Ed25519PublicKey | None, report: VerifyReport) -> None:
    size = scan.edge.size
    good = 0
    for head in heads:
        report.heads_checked += 1
        last = max(head.size - 1, 0)
        if key is not None and not verify_head(head, key):
            report.findings.append(
                Finding(
                    last, "head", f"the signed head for size {head.size} has an invalid signature: forged or altered"
                )
            )
        elif head.size > size:
            if scan.complete:
                report.findings.append(
                    Finding(size, "truncated", f"a signed head covers {head.size} events but only {size} are stored")
                )
        elif head.size in scan.roots:
            if scan.roots[head.size] != head.root_hash:
                report.findings.append(
                    Finding(
                        good, "rewritten", f"events {good}..{last} do not match the signed head for size {head.size}"
                    )
                )
            else:
                good = max(good, head.size)
