"""Retention by deletion: delete the event rows of exported segments, keep the tree.

``prune`` deletes events ``[P, E)`` (``P``: where the pruned prefix ends so far) only
when archive segments (``pacsguard audit archive``) tile that range exactly, and each
segment still verifies: its manifest's signature, its file's SHA-256, its leaves up to
the signed head in its manifest (``archive.segment_problem``), and its leaves equal the
log's own stored leaf hashes. Then, in one transaction, it records each segment in
``audit_prunes``, keeps the events' leaf hashes as level-0 tree nodes, and deletes the
rows. The tree nodes are never deleted: heads, inclusion proofs of retained events and
consistency proofs stay valid, and ``verify`` recomputes the tree from the kept leaves.

The caller records the prune (``audit.pruned``) through ``record`` before anything is
deleted: if it cannot be recorded, nothing is deleted (fail closed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, delete, insert, literal, select
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit import merkle
from pacsguard.audit._rowcheck import Finding, check_pruned, read_pruned, read_range
from pacsguard.audit.archive import segment_problem
from pacsguard.audit.store import AuditStore, Pruned, db_reason, to_us
from pacsguard.domain.events import JsonValue
from pacsguard.errors import AuditError, AuditIntegrityError, AuditUnavailable
from pacsguard.storage.audit_tables import audit_events, audit_nodes, audit_prunes

__all__ = ["SegmentFile", "check_pruned_files", "prune"]


@dataclass(frozen=True, slots=True)
class SegmentFile:
    """A segment to prune: events ``[first, end)`` and its checked events file."""

    first: int
    end: int
    manifest: Path
    file: str
    file_sha256: str


def prune(
    engine: Engine,
    before: int,
    segments: Path,
    public_key: Ed25519PublicKey,
    *,
    now: datetime,
    record: Callable[[dict[str, JsonValue]], None],
) -> list[Pruned]:
    """Delete the rows of the exported segments in ``segments`` that lie before ``before``.

    Raises ``AuditError`` if no exported segment starts where the pruned prefix ends (an
    unexported range), ``AuditIntegrityError`` if a segment does not verify or differs
    from the log (nothing is deleted then), ``AuditUnavailable`` if storage fails.
    """
    store = AuditStore(engine)
    try:
        done = max((p.end for p in store.pruned()), default=0)
        size = store.size()
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"the audit log cannot be read: {db_reason(exc)}") from exc
    chosen = _tiling(segments, done, min(before, size))
    if not chosen:
        raise AuditError(
            f"no exported segment starts at event {done} and ends by {before}: nothing can be pruned; "
            f"run 'pacsguard audit archive --before {before} --output {segments}' first"
        )
    for segment in chosen:
        _check(engine, segment, public_key)
    record(
        {
            "pruned": {"first": chosen[0].first, "end": chosen[-1].end},
            "segments": [{"file": s.file, "sha256": s.file_sha256} for s in chosen],
        }
    )
    try:
        with engine.begin() as conn:
            for s in chosen:
                conn.execute(
                    insert(audit_prunes).values(
                        first=s.first, end=s.end, file=s.file, file_sha256=s.file_sha256, pruned_us=to_us(now)
                    )
                )
                rows = audit_events.c.seq >= s.first, audit_events.c.seq < s.end
                kept = select(literal(0), audit_events.c.seq, audit_events.c.leaf_hash).where(*rows)
                conn.execute(insert(audit_nodes).from_select(["level", "idx", "hash"], kept))
                conn.execute(delete(audit_events).where(*rows))
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"the audit log cannot be pruned: {db_reason(exc)}") from exc
    return [Pruned(s.first, s.end, s.file, s.file_sha256, now) for s in chosen]


def _tiling(directory: Path, start: int, limit: int) -> list[SegmentFile]:
    """The segments that cover ``[start, E)`` without a gap, for the largest ``E <= limit``."""
    by_first: dict[int, SegmentFile] = {}
    for manifest in sorted(directory.glob("segment-*.manifest.json")):
        try:
            raw = json.loads(manifest.read_text(encoding="utf-8"))
            segment = SegmentFile(
                int(raw["first"]), int(raw["end"]), manifest, Path(str(raw["file"])).name, str(raw["file_sha256"])
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditIntegrityError(
                f"{manifest}: not a readable segment manifest ({exc}): nothing was pruned"
            ) from exc
        by_first.setdefault(segment.first, segment)
    chosen: list[SegmentFile] = []
    at = start
    while at in by_first and by_first[at].end <= limit:
        chosen.append(by_first[at])
        at = by_first[at].end
    return chosen


def _check(engine: Engine, segment: SegmentFile, public_key: Ed25519PublicKey) -> None:
    """Raise ``AuditIntegrityError`` unless the segment verifies and holds exactly the log's leaves."""
    try:
        problem = segment_problem(segment.manifest, public_key)
        body = (segment.manifest.parent / segment.file).read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditIntegrityError(f"{segment.manifest.name}: cannot be read ({exc}): nothing was pruned") from exc
    if problem is not None:
        raise AuditIntegrityError(f"{problem.message}: nothing was pruned")
    if hashlib.sha256(body).hexdigest() != segment.file_sha256:  # changed since segment_problem read it
        raise AuditIntegrityError(f"{segment.file} changed while being checked: nothing was pruned")
    ours = b"".join(merkle.leaf_hash(line) for line in body.split(b"\n")[:-1])
    try:
        stored = b"".join(bytes(row[8]) for row in read_range(engine, segment.first, segment.end))
    except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        raise AuditUnavailable(f"the audit log cannot be read: {db_reason(exc)}") from exc
    if ours != stored:
        raise AuditIntegrityError(
            f"{segment.file} does not hold the log's events {segment.first}..{segment.end - 1} "
            "(their leaf hashes differ, or the rows are gone): nothing was pruned"
        )


def check_pruned_files(engine: Engine, directory: Path) -> list[Finding]:
    """Re-check each pruned segment from its file in ``directory``: present, same SHA-256 as
    recorded, and its events hash to the leaf hashes the log kept. Findings, first seq first.

    Never raises for a bad file; raises ``AuditUnavailable`` if the log cannot be read.
    """
    store = AuditStore(engine)
    findings: list[Finding] = []
    try:
        for pruned in store.pruned():
            problem = _pruned_problem(engine, pruned, directory)
            if problem is not None:
                findings.append(Finding(pruned.first, problem[0], f"pruned segment {pruned.file}: {problem[1]}"))
    except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        raise AuditUnavailable(f"the audit log cannot be read: {db_reason(exc)}") from exc
    return findings


def _pruned_problem(engine: Engine, pruned: Pruned, directory: Path) -> tuple[str, str] | None:
    try:
        body = (directory / pruned.file).read_bytes()
    except OSError as exc:
        return "missing", f"its file cannot be read ({exc.strerror or exc})"
    if hashlib.sha256(body).hexdigest() != pruned.file_sha256:
        return "altered", "the file's SHA-256 is not the one recorded when it was pruned"
    leaves, finding = check_pruned(read_pruned(engine, pruned.first, pruned.end), pruned.first, pruned.end)
    if finding is not None:
        return finding.kind, finding.message
    if b"".join(merkle.leaf_hash(line) for line in body.split(b"\n")[:-1]) != leaves:
        return "altered", "its events do not hash to the leaf hashes the log kept"
    return None
