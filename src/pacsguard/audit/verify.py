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

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit import merkle
from pacsguard.audit.heads import SignedHead, verify_head
from pacsguard.audit.store import AuditStore, db_reason
from pacsguard.storage.audit_tables import audit_events, audit_nodes

__all__ = ["Finding", "VerifyReport", "verify"]

Progress = Callable[[int, int], None]
_CHUNK = 20_000
_EPOCH = datetime(1970, 1, 1)  # naive: canonical times are UTC
_US = timedelta(microseconds=1)
_decode = json.JSONDecoder().decode
_COLUMNS = ("seq", "occurred_us", "type", "outcome", "principal_id", "ip", "patient_id", "study_uid")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that does not verify, located at the first sequence number it affects."""

    seq: int
    kind: str  # missing, altered, moved, node, head, truncated, rewritten, unreadable
    message: str


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


def verify(engine: Engine, public_key: Ed25519PublicKey | None, *, progress: Progress | None = None) -> VerifyReport:
    """Verify the audit log in ``engine``; heads are checked against ``public_key``.

    Never raises for a corrupted or unreadable database: problems become findings.
    """
    report = VerifyReport()
    store = AuditStore(engine)
    try:
        heads = store.heads()
        with engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(audit_events)).scalar() or 0)
    except SQLAlchemyError as exc:
        report.findings.append(Finding(0, "unreadable", f"the audit tables cannot be read: {db_reason(exc)}"))
        return report
    scan = _Scan({h.size for h in heads})
    try:
        scan.run(engine, report, total, progress)
    except SQLAlchemyError as exc:
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


class _Scan:
    """Walks the events in order, rebuilding the tree until the first bad event."""

    def __init__(self, head_sizes: set[int]) -> None:
        self.edge = merkle.RightEdge()
        self.head_sizes = head_sizes
        self.roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        self.levels: list[list[bytes]] = [[]]
        self.complete = True  # False once an event finding stopped the scan

    def run(self, engine: Engine, report: VerifyReport, total: int, progress: Progress | None) -> None:
        query = select(*(audit_events.c[c] for c in _COLUMNS), audit_events.c.leaf_hash, audit_events.c.canonical)
        after = -1
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    query.where(audit_events.c.seq > after).order_by(audit_events.c.seq).limit(_CHUNK)
                ).all()
            for row in rows:
                finding = self._event(tuple(row))
                if finding is not None:
                    report.findings.append(finding)
                    self.complete = False
                    return
            if progress is not None:
                progress(self.edge.size, total)
            if len(rows) < _CHUNK:
                return
            after = int(rows[-1][0])

    def _event(self, row: tuple[Any, ...]) -> Finding | None:
        expected = self.edge.size
        try:
            seq = int(row[0])
            if seq != expected:
                return Finding(expected, "missing", f"event {expected} is missing (the next stored event is {seq})")
            data, stored_leaf = bytes(row[9]), bytes(row[8])
            leaf = merkle.leaf_hash(data)
            if leaf != stored_leaf:
                return Finding(seq, "altered", f"event {seq}: its bytes do not match its stored leaf hash")
            problem = _columns_problem(row, _decode(data.decode("utf-8")))
        except Exception as exc:  # any malformed row is a finding, never a traceback
            return Finding(expected, "unreadable", f"event {expected} cannot be read: {type(exc).__name__}: {exc}")
        if problem is not None:
            kind, message = problem
            return Finding(seq, kind, f"event {seq}: {message}")
        for level, index, h in self.edge.append(leaf):
            if len(self.levels) <= level:
                self.levels.append([])
            self.levels[level].append(h)
            del index  # the lists are in index order by construction
        if self.edge.size in self.head_sizes:
            self.roots[self.edge.size] = self.edge.root()
        return None


def _columns_problem(row: tuple[Any, ...], form: dict[str, Any]) -> tuple[str, str] | None:
    if form.get("seq") != row[0]:
        return "moved", f"stored at seq {row[0]} but its signed bytes say seq {form.get('seq')}"
    actor, objects = form["actor"], form["objects"]
    expected = (
        (datetime.fromisoformat(form["occurred_at"][:-1]) - _EPOCH) // _US,
        form["type"],
        form["outcome"],
        actor.get("principal_id"),
        actor.get("ip"),
        objects.get("patient_id"),
        objects.get("study_uid"),
    )
    if row[1:8] == expected:
        return None
    for name, stored, real in zip(_COLUMNS[1:], row[1:8], expected, strict=True):
        if stored != real:
            return "altered", f"column {name} says {stored!r} but the event says {real!r}"
    return "altered", "its columns do not match the event"


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
