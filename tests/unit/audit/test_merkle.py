"""Merkle hashing and proofs against a naive recursive RFC 9162 implementation."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacsguard.audit import merkle


def naive_root(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [naive_root(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], whole), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


def build(size: int) -> tuple[list[bytes], merkle.NodeGetter, merkle.RightEdge]:
    leaves = [merkle.leaf_hash(b"event %d" % i) for i in range(size)]
    nodes: dict[tuple[int, int], bytes] = {(0, i): h for i, h in enumerate(leaves)}
    edge = merkle.RightEdge()
    for h in leaves:
        for level, index, value in edge.append(h):
            nodes[level, index] = value
    return leaves, lambda level, index: nodes[level, index], edge


def flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    return data[: bit // 8] + bytes([data[bit // 8] ^ (1 << (bit % 8))]) + data[bit // 8 + 1 :]


def test_hashes_follow_rfc9162() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert merkle.RightEdge().root() == hashlib.sha256(b"").digest()


@given(st.integers(1, 300))
def test_right_edge_root_matches_naive_at_every_size(size: int) -> None:
    leaves, get, edge = build(size)
    assert edge.root() == naive_root(leaves)
    assert merkle.RightEdge.restore(size, get).root() == naive_root(leaves)
    assert merkle.subtree_hash(0, size, get) == naive_root(leaves)


@given(st.data())
def test_inclusion_proofs_verify_and_reject_bit_flips(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 200))
    index = data.draw(st.integers(0, size - 1))
    leaves, get, edge = build(size)
    root = edge.root()
    proof = merkle.inclusion_proof(index, size, get)
    assert proof == naive_path(index, leaves)
    assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_inclusion(flip(leaves[index], bit), index, size, proof, root)
    assert not merkle.verify_inclusion(leaves[index], index, size, proof, flip(root, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not merkle.verify_inclusion(leaves[index], index, size, bad, root)
    assert not merkle.verify_inclusion(leaves[index], index, size, [*proof, root], root)
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        assert not merkle.verify_inclusion(leaves[index], other, size, proof, root)


@given(st.data())
def test_consistency_proofs_verify_and_reject_bit_flips(data: st.DataObject) -> None:
    new_size = data.draw(st.integers(1, 200))
    old_size = data.draw(st.integers(1, new_size))
    leaves, get, edge = build(new_size)
    old_root, new_root = naive_root(leaves[:old_size]), edge.root()
    proof = merkle.consistency_proof(old_size, new_size, get)
    assert proof == (naive_subproof(old_size, leaves, True) if old_size < new_size else [])
    assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_consistency(old_size, new_size, flip(old_root, bit), new_root, proof)
    assert not merkle.verify_consistency(old_size, new_size, old_root, flip(new_root, bit), proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, bad)


def test_empty_and_out_of_range_cases() -> None:
    leaves, get, edge = build(5)
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, edge.root(), [])
    assert not merkle.verify_consistency(6, 5, edge.root(), edge.root(), [])
    assert not merkle.verify_inclusion(leaves[0], 5, 5, [], edge.root())
    assert merkle.consistency_proof(0, 5, get) == []
    for index in (-1, 5):
        with pytest.raises(ValueError, match="not in a tree"):
            merkle.inclusion_proof(index, 5, get)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(6, 5, get)
