"""Merkle tree hashing, proofs and proof verification, as in RFC 9162 §2.1.

Pure code: ``hashlib`` only, no I/O. Leaves are numbered from 0 (the audit log's ``seq``
is the leaf index). A *complete subtree* at ``level`` L and ``index`` i is the root of
leaves ``[i·2^L, (i+1)·2^L)``; the log stores those hashes, and the proof functions
read them through a ``NodeGetter`` so a proof at a million leaves needs only a few
dozen lookups.

Standalone verification for auditors (no database needed):

* ``verify_inclusion(leaf_hash, index, size, proof, root) -> bool`` (RFC 9162 §2.1.3.2)
* ``verify_consistency(old_size, new_size, old_root, new_root, proof) -> bool``
  (RFC 9162 §2.1.4.2)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "NodeGetter",
    "RightEdge",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

NodeGetter = Callable[[int, int], bytes]
"""``get(level, index)``: the hash of a complete subtree (level 0 = leaf hashes)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH of one entry: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class RightEdge:
    """The right edge of a growing tree: one complete-subtree hash per set bit of ``size``.

    ``append`` costs O(log n) and returns the complete subtrees it finished, as
    ``(level, index, hash)`` with level ≥ 1, for the caller to store.
    """

    __slots__ = ("_edge", "size")

    def __init__(self, size: int = 0, edge: dict[int, bytes] | None = None) -> None:
        self.size = size
        self._edge: dict[int, bytes] = dict(edge or {})

    @classmethod
    def restore(cls, size: int, get: NodeGetter) -> RightEdge:
        """Rebuild the edge of a tree of ``size`` leaves from stored complete subtrees."""
        edge = {level: get(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1}
        return cls(size, edge)

    def copy(self) -> RightEdge:
        return RightEdge(self.size, self._edge)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the new complete subtrees of level ≥ 1."""
        finished: list[tuple[int, int, bytes]] = []
        h, level, index = leaf, 0, self.size
        while self.size >> level & 1:
            h = node_hash(self._edge.pop(level), h)
            level += 1
            index >>= 1
            finished.append((level, index, h))
        self._edge[level] = h
        self.size += 1
        return finished

    def root(self) -> bytes:
        """The tree head hash MTH(D[size])."""
        acc: bytes | None = None
        for level in sorted(self._edge):
            acc = self._edge[level] if acc is None else node_hash(self._edge[level], acc)
        return EMPTY_ROOT if acc is None else acc


def subtree_hash(start: int, n: int, get: NodeGetter) -> bytes:
    """MTH(D[start:start+n]) for a range the RFC 9162 recursion produces (n ≥ 1)."""
    if n & (n - 1) == 0 and start % n == 0:
        return get(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(subtree_hash(start, k, get), subtree_hash(start + k, n - k, get))


def inclusion_proof(index: int, size: int, get: NodeGetter) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1); raises ``ValueError`` if out of range."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            path.append(subtree_hash(start + k, n - k, get))
            n = k
        else:
            path.append(subtree_hash(start, k, get))
            start, n, m = start + k, n - k, m - k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, get: NodeGetter) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1); raises ``ValueError`` on bad sizes."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    start, n, m, whole = 0, new_size, old_size, True
    while m != n:
        k = _split(n)
        if m <= k:
            path.append(subtree_hash(start + k, n - k, get))
            n = k
        else:
            path.append(subtree_hash(start, k, get))
            start, n, m, whole = start + k, n - k, m - k, False
    if not whole:
        path.append(subtree_hash(start, n, get))
    path.reverse()
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True if ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """True if ``proof`` shows the tree (old_size, old_root) is a prefix of (new_size, new_root)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
