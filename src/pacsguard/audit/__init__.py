"""The tamper-evident audit log: events, Merkle tree, signed heads, proofs, exports."""
