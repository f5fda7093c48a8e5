"""Inclusion and consistency proofs served from storage, as JSON an auditor can check offline.

The JSON carries hex hashes; ``check_inclusion`` and ``check_consistency`` redo the check
from that JSON alone with ``merkle.verify_inclusion`` / ``merkle.verify_consistency``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit import merkle
from pacsguard.audit.heads import SignedHead
from pacsguard.audit.store import AuditStore, db_reason
from pacsguard.errors import AuditError, AuditUnavailable

__all__ = ["ConsistencyProof", "InclusionProof", "check_consistency", "check_inclusion", "consistency", "inclusion"]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Event ``seq`` (its canonical bytes and leaf hash) is leaf ``seq`` of the tree of ``size``."""

    seq: int
    size: int
    canonical: bytes
    leaf_hash: bytes
    path: tuple[bytes, ...]
    root: bytes
    head: SignedHead | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "size": self.size,
            "event": self.canonical.decode("utf-8"),
            "leaf_hash": self.leaf_hash.hex(),
            "path": [p.hex() for p in self.path],
            "root_hash": self.root.hex(),
            "head": self.head.to_json() if self.head else None,
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree of ``old_size`` is a prefix of the tree of ``new_size``."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root_hash": self.old_root.hex(),
            "new_root_hash": self.new_root.hex(),
            "path": [p.hex() for p in self.path],
        }


def inclusion(engine: Engine, seq: int, size: int | None = None) -> InclusionProof:
    """Prove event ``seq`` against the newest signed head covering it (or against ``size``).

    Raises ``AuditError`` if the event or a covering head does not exist.
    """
    store = AuditStore(engine)
    try:
        heads = store.heads()
        stored = store.size()
        leaf = store.leaf(seq)
        pruned = [p for p in store.pruned() if p.first <= seq < p.end] if leaf is None else []
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"the audit log cannot be read: {db_reason(exc)}") from exc
    if pruned:
        raise AuditError(
            f"event {seq} was pruned: its bytes and the proof to a signed head are in the segment {pruned[0].file} "
            "(check it with 'pacsguard audit verify --segments DIR')"
        )
    if leaf is None or not 0 <= seq < stored:
        holds = f"events 0..{stored - 1}" if stored else "no events yet"
        raise AuditError(f"there is no event {seq} (the log holds {holds})")
    head = _head_for(heads, seq, size)
    if size is None and head is None:
        raise AuditError(f"no signed head covers event {seq} yet: run 'pacsguard audit sign-head' first")
    size = head.size if size is None and head is not None else size
    assert size is not None
    if size > stored or seq >= size:
        raise AuditError(f"cannot prove event {seq} in a tree of size {size} (the log holds {stored} events)")
    path, root = store.prove(lambda get: (merkle.inclusion_proof(seq, size, get), merkle.subtree_hash(0, size, get)))
    return InclusionProof(seq, size, leaf[0], leaf[1], tuple(path), root, head)


def consistency(engine: Engine, old_size: int, new_size: int) -> ConsistencyProof:
    """Prove that the log at ``old_size`` is a prefix of the log at ``new_size``; raises ``AuditError``."""
    store = AuditStore(engine)
    try:
        stored = store.size()
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"the audit log cannot be read: {db_reason(exc)}") from exc
    if not 0 < old_size <= new_size <= stored:
        raise AuditError(f"need 0 < OLD <= NEW <= {stored} (the log's size); got {old_size} and {new_size}")

    def compute(get: merkle.NodeGetter) -> tuple[list[bytes], bytes, bytes]:
        proof = merkle.consistency_proof(old_size, new_size, get)
        return proof, merkle.subtree_hash(0, old_size, get), merkle.subtree_hash(0, new_size, get)

    path, old_root, new_root = store.prove(compute)
    return ConsistencyProof(old_size, new_size, old_root, new_root, tuple(path))


def check_inclusion(proof: dict[str, Any]) -> bool:
    """Re-check an inclusion proof from its JSON alone (the leaf is rehashed from the event)."""
    leaf = merkle.leaf_hash(str(proof["event"]).encode("utf-8"))
    path = [bytes.fromhex(p) for p in proof["path"]]
    return merkle.verify_inclusion(leaf, int(proof["seq"]), int(proof["size"]), path, bytes.fromhex(proof["root_hash"]))


def check_consistency(proof: dict[str, Any]) -> bool:
    """Re-check a consistency proof from its JSON alone."""
    return merkle.verify_consistency(
        int(proof["old_size"]),
        int(proof["new_size"]),
        bytes.fromhex(proof["old_root_hash"]),
        bytes.fromhex(proof["new_root_hash"]),
        [bytes.fromhex(p) for p in proof["path"]],
    )


def _head_for(heads: list[SignedHead], seq: int, size: int | None) -> SignedHead | None:
    covering = [h for h in heads if h.size > seq and (size is None or h.size == size)]
    return max(covering, key=lambda h: h.size) if covering else None
