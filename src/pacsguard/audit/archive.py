"""Archiving the oldest events to signed JSONL segments that keep the Merkle proofs valid.

A segment is one complete, aligned subtree of the log: events ``[i·2^L, (i+1)·2^L)``
(``L`` = ``level``, 16 by default: 65,536 events). Its files, in the output directory:

* ``segment-<first>-<end>.jsonl``: the events' canonical bytes, one per line, in order
  (canonical JSON has no raw newline: it escapes them);
* ``segment-<first>-<end>.manifest.json``: the range, the file's SHA-256, the Merkle
  root of its leaf hashes (equal to the stored tree node at level ``L``, index ``i``),
  the newest signed tree head and the audit path from that subtree root to the head's
  root, all signed with the site key.

``verify_segments`` checks a directory of them without the database: the manifest
signature, the file hash, every leaf, the subtree root, the head's signature, and the
path from the subtree to the head. Deleting archived rows is ``pacsguard.audit.prune``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit import merkle
from pacsguard.audit._rowcheck import Finding, read_range, subtree_levels
from pacsguard.audit.canonical import canonical_json
from pacsguard.audit.heads import SignedHead, key_id, verify_head
from pacsguard.audit.store import AuditStore, db_reason
from pacsguard.errors import AuditError, AuditIntegrityError, AuditUnavailable

__all__ = ["SEGMENT_LEVEL", "Segment", "archive_segments", "segment_problem", "verify_segments"]

SEGMENT_LEVEL = 16
_MANIFEST = "pacsguard-audit-segment"


@dataclass(frozen=True, slots=True)
class Segment:
    """One written segment: its event range and its two files."""

    first: int
    end: int
    events: Path
    manifest: Path


def archive_segments(
    engine: Engine, before: int, output: Path, signing_key: Ed25519PrivateKey, *, level: int = SEGMENT_LEVEL
) -> list[Segment]:
    """Write the whole segments among events ``[0, before)`` to ``output``; rows are kept.

    Raises ``AuditError`` if no whole segment lies before ``before`` or no signed head
    covers them, ``AuditIntegrityError`` if a row or tree node does not verify (a
    corrupted log is never archived), ``AuditUnavailable`` if storage cannot be read.
    """
    width = 1 << level
    end = (before // width) * width
    if end == 0:
        raise AuditError(f"no whole segment of {width} events lies before seq {before}: nothing to archive")
    store = AuditStore(engine)
    try:
        head = store.latest_head()
        if head is None or head.size < end:
            raise AuditError(f"no signed head covers events up to {end - 1}: run 'pacsguard audit sign-head' first")
        output.mkdir(parents=True, exist_ok=True)
        return [_write(engine, store, head, output, signing_key, level, i) for i in range(end >> level)]
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"the audit log cannot be read: {db_reason(exc)}") from exc


def _write(
    engine: Engine, store: AuditStore, head: SignedHead, output: Path, key: Ed25519PrivateKey, level: int, index: int
) -> Segment:
    first, end = index << level, (index + 1) << level
    rows = read_range(engine, first, end)
    lines: list[bytes] = []
    leaves: list[bytes] = []
    for seq, row in enumerate(rows, start=first):
        data, leaf = bytes(row[9]), bytes(row[8])
        if int(row[0]) != seq or merkle.leaf_hash(data) != leaf:
            raise AuditIntegrityError(f"event {seq} does not verify: run 'pacsguard audit verify' before archiving")
        lines.append(data)
        leaves.append(leaf)
    if len(leaves) != end - first:
        raise AuditIntegrityError(f"events {first}..{end - 1} are incomplete: run 'pacsguard audit verify'")
    root = subtree_levels(b"".join(leaves), level)[-1] if level else leaves[0]
    if store.prove(lambda get: get(level, index)) != root:
        raise AuditIntegrityError(f"the stored tree node over events {first}..{end - 1} does not match them")
    path = store.prove(lambda get: merkle.inclusion_proof(first, head.size, get))[level:]
    body = b"".join(line + b"\n" for line in lines)
    name = f"segment-{first:012d}-{end:012d}"
    events, manifest = output / f"{name}.jsonl", output / f"{name}.manifest.json"
    events.write_bytes(body)
    fields = _fields(first, end, level, events.name, hashlib.sha256(body).digest(), root, head, path)
    signed = {**fields, "key_id": key_id(key.public_key()), "signature": _b64(key.sign(canonical_json(fields)))}
    manifest.write_text(json.dumps(signed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Segment(first, end, events, manifest)


def _fields(
    first: int, end: int, level: int, file: str, digest: bytes, root: bytes, head: SignedHead, path: list[bytes]
) -> dict[str, Any]:
    """The signed part of a manifest."""
    return {
        "format": _MANIFEST,
        "first": first,
        "end": end,
        "level": level,
        "file": file,
        "file_sha256": digest.hex(),
        "root_hash": root.hex(),
        "head": head.to_json(),
        "path": [h.hex() for h in path],
    }


def verify_segments(directory: Path, public_key: Ed25519PublicKey) -> list[Finding]:
    """Check every segment manifest in ``directory`` and its events file; the findings, first seq first.

    Never raises for a bad file: every problem is a finding (at the segment's first seq).
    """
    findings: list[Finding] = []
    manifests = sorted(directory.glob("segment-*.manifest.json"))
    if not manifests:
        return [Finding(0, "missing", f"no segment manifests in {directory}")]
    for manifest in manifests:
        try:
            problem = segment_problem(manifest, public_key)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = Finding(0, "unreadable", f"{manifest.name}: {type(exc).__name__}: {exc}")
        if problem is not None:
            findings.append(problem)
    return sorted(findings, key=lambda f: f.seq)


def segment_problem(manifest: Path, public_key: Ed25519PublicKey) -> Finding | None:  # noqa: PLR0911 - one per check
    """The first thing wrong with one segment (manifest and events file), or ``None``.

    Raises ``OSError``/``ValueError``/``KeyError``/``TypeError`` for an unreadable manifest.
    """
    raw = json.loads(manifest.read_text(encoding="utf-8"))
    fields = {k: v for k, v in raw.items() if k not in ("key_id", "signature")}
    first, end, level = int(fields["first"]), int(fields["end"]), int(fields["level"])

    def found(kind: str, message: str) -> Finding:
        return Finding(first, kind, f"{manifest.name}: {message}")

    if fields.get("format") != _MANIFEST or end - first != 1 << level or first % (1 << level):
        return found("unreadable", "not a segment manifest")
    try:
        public_key.verify(base64.b64decode(raw["signature"], validate=True), canonical_json(fields))
    except (InvalidSignature, ValueError):
        return found("head", "the manifest signature is invalid: forged or altered")
    body = (manifest.parent / Path(str(fields["file"])).name).read_bytes()
    if hashlib.sha256(body).hexdigest() != fields["file_sha256"]:
        return found("altered", "the events file does not match the manifest's SHA-256")
    lines = body.split(b"\n")[:-1]
    if len(lines) != end - first or body[-1:] != b"\n":
        return found("missing", f"the events file holds {len(lines)} events, not {end - first}")
    leaves = b"".join(merkle.leaf_hash(line) for line in lines)
    root = subtree_levels(leaves, level)[-1] if level else leaves
    if root.hex() != fields["root_hash"]:
        return found("altered", "the events do not hash to the manifest's root")
    head = SignedHead.from_json(fields["head"])
    if not verify_head(head, public_key):
        return found("head", "the signed head in the manifest has an invalid signature")
    path = [bytes.fromhex(h) for h in fields["path"]]
    units = -(-head.size // (1 << level))  # the head's tree seen at this level: one leaf per segment
    if not merkle.verify_inclusion(root, first >> level, units, path, head.root_hash):
        return found("rewritten", f"the segment is not part of the signed head for size {head.size}")
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
