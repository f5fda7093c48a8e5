"""``verify``: recompute the whole log from storage and name the first sequence number that differs.

Checks, in order of sequence number: every event is present (no gap; a pruned event's
leaf hash is taken from the level-0 node kept for it, see ``pacsguard audit prune``), its canonical
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
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit import merkle
from pacsguard.audit._rowcheck import (
    CHUNK,
    CHUNK_LEVEL,
    Chunk,
    Finding,
    check_chunk,
    check_range,
)
from pacsguard.audit.heads import SignedHead, verify_head
from pacsguard.audit.store import AuditStore, Pruned, db_reason
from pacsguard.collector import paused
from pacsguard.storage.audit_tables import audit_events

__all__ = ["Finding", "VerifyReport", "verify"]  # Finding is defined in _rowcheck

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class VerifyReport:
    """The outcome of ``verify``: events and heads checked, and what was found."""

    size: int = 0
    heads_checked: int = 0
    root: bytes = merkle.EMPTY_ROOT
    findings: list[Finding] = field(default_factory=list)
    pruned: tuple[Pruned, ...] = ()  # segments whose rows were deleted: their leaves came from the kept hashes

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

    ``workers`` > 1 checks event rows in that many worker processes (the tree is still
    joined in order here). ``None``: two when the log holds more than two ranges of
    ``CHUNK`` events and the machine has two cores, else one (starting a worker costs
    about a second). Never raises for a corrupted or unreadable database: problems become
    findings.
    """
    report = VerifyReport()
    try:
        heads = AuditStore(engine).heads()
        pruned = AuditStore(engine).pruned()
        with engine.connect() as conn:
            last = conn.execute(select(func.max(audit_events.c.seq))).scalar()
    except SQLAlchemyError as exc:
        report.findings.append(Finding(0, "unreadable", f"the audit tables cannot be read: {db_reason(exc)}"))
        return report
    report.pruned = tuple(pruned)
    cut = max((p.end for p in pruned), default=0)
    end = max(0 if last is None else int(last) + 1, cut)
    scan = _Scan()
    try:
        if workers is None:
            workers = 2 if end > 2 * CHUNK and (os.cpu_count() or 1) > 1 else 1
        scan.run(_chunks(engine, end, workers, cut), end, report, progress)
    except (SQLAlchemyError, OSError, BrokenProcessPool) as exc:
        report.findings.append(Finding(scan.size, "unreadable", f"reading failed: {db_reason(exc)}"))
        scan.complete = False
    report.size = scan.size
    report.root = scan.root(scan.size)
    _check_heads(heads, scan, public_key, report)
    if scan.complete:
        try:
            _check_nodes(engine, scan, report)
        except (
            SQLAlchemyError,
            engine.dialect.loaded_dbapi.Error,
            ValueError,
        ) as exc:  # ValueError: an index not a number
            report.findings.append(Finding(0, "unreadable", f"the tree nodes cannot be read: {db_reason(exc)}"))
    return report


def _chunks(engine: Engine, end: int, workers: int, pruned: int) -> Iterator[Chunk]:
    ranges = [(lo, min(lo + CHUNK, end)) for lo in range(0, end, CHUNK)]
    if workers <= 1:
        for lo, hi in ranges:
            yield check_chunk(engine, lo, hi, pruned)
        return
    url = engine.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(check_range, url, lo, hi, pruned) for lo, hi in ranges]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


class _Scan:
    """Joins the checked ranges, in order, into the whole tree, until the first bad event.

    Ranges are ``CHUNK`` leaves long and aligned, so each brings its own complete
    subtrees up to ``CHUNK_LEVEL``; only the few nodes above are computed here.
    """

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray() for _ in range(CHUNK_LEVEL + 1)]  # [0]: leaves
        self.top = merkle.RightEdge()  # over the level-CHUNK_LEVEL nodes
        self.size = 0
        self.complete = True  # False once an event finding stopped the scan

    def run(self, chunks: Iterator[Chunk], end: int, report: VerifyReport, progress: Progress | None) -> None:
        try:
            for chunk in chunks:
                self._add(chunk)
                if progress is not None:
                    progress(self.size, end)
                if chunk.finding is not None:
                    report.findings.append(chunk.finding)
                    self.complete = False
                    return
        finally:
            if isinstance(chunks, Generator):
                chunks.close()

    def _add(self, chunk: Chunk) -> None:
        self.levels[0] += chunk.leaves
        for level, hashes in enumerate(chunk.nodes, start=1):
            self.levels[level] += hashes
        self.size += len(chunk.leaves) // 32
        if len(chunk.leaves) // 32 == CHUNK:
            for level, _idx, h in self.top.append(chunk.nodes[-1][-32:]):
                while len(self.levels) <= CHUNK_LEVEL + level:
                    self.levels.append(bytearray())
                self.levels[CHUNK_LEVEL + level] += h

    def get(self, level: int, index: int) -> bytes:
        return bytes(self.levels[level][index * 32 : index * 32 + 32])

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` leaves (size <= self.size)."""
        return merkle.RightEdge.restore(size, self.get).root()

    def nodes(self, level: int) -> bytes:
        return bytes(self.levels[level]) if 0 < level < len(self.levels) else b""


def _check_nodes(engine: Engine, scan: _Scan, report: VerifyReport) -> None:
    """Compare the stored complete-subtree hashes (what proofs are made of) with the recomputed ones.

    Level by level: a level whose stored indexes run 0..n-1 (the key makes them unique)
    and whose stored hashes, joined in that order, equal the recomputed ones joined is
    right as a whole; only a level that differs is read again with its indexes, to find where.
    """
    top = len(scan.levels)
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    raw = engine.raw_connection()  # at a million events, SQLAlchemy rows cost more than the comparison
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT level, count(*), min(idx), max(idx) FROM audit_nodes GROUP BY level")
        stored = {int(level): (int(n), int(first), int(last)) for level, n, first, last in cursor.fetchall()}
        found: list[Finding] = []
        for level in sorted((stored.keys() - {0}) | set(range(1, top))):  # level 0: the pruned leaves, used above
            joined = scan.nodes(level)
            n = len(joined) // 32
            if stored.get(level, (0, 0, -1)) == (n, 0, n - 1):
                cursor.execute(f"SELECT hash FROM audit_nodes WHERE level = {mark} ORDER BY idx", (level,))  # noqa: S608
                with paused(), suppress(TypeError):  # TypeError: a hash that is not bytes
                    if b"".join([r[0] for r in cursor.fetchall()]) == joined:
                        continue
            cursor.execute(f"SELECT idx, hash FROM audit_nodes WHERE level = {mark} ORDER BY idx", (level,))  # noqa: S608
            rows = [(int(i), bytes(h) if isinstance(h, (bytes, memoryview)) else None) for i, h in cursor.fetchall()]
            ours = [joined[i : i + 32] for i in range(0, len(joined), 32)]
            found += _level_problem(level, rows, ours, scan.size)
        cursor.close()
    finally:
        raw.close()
    if found:
        report.findings.append(min(found, key=lambda f: f.seq))


def _level_problem(level: int, rows: list[tuple[int, bytes | None]], ours: list[bytes], size: int) -> list[Finding]:
    """The first difference between one level's stored and recomputed nodes."""
    stored = dict(rows)
    for idx, h in enumerate(ours):
        if idx not in stored:
            return [_missing_node(level, idx)]
        if stored[idx] != h:
            return [Finding(idx << level, "node", f"the tree node at level {level}, index {idx} is wrong")]
    extra = sorted(i for i in stored if i >= len(ours))
    if extra:
        first, last = extra[0], ((extra[0] + 1) << level) - 1
        return [Finding(max(first << level, size), "node", f"a stored tree node covers events up to {last}")]
    return []


def _missing_node(level: int, idx: int) -> Finding:
    last = ((idx + 1) << level) - 1
    return Finding(last, "node", f"the tree node completed by event {last} (level {level}, index {idx}) is not stored")


def _check_heads(heads: list[SignedHead], scan: _Scan, key: Ed25519PublicKey | None, report: VerifyReport) -> None:
    size = scan.size
    good = 0
    roots: dict[int, bytes] = {}
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
        else:
            if head.size not in roots:
                roots[head.size] = scan.root(head.size)
            if roots[head.size] != head.root_hash:
                report.findings.append(
                    Finding(
                        good, "rewritten", f"events {good}..{last} do not match the signed head for size {head.size}"
                    )
                )
            else:
                good = max(good, head.size)
