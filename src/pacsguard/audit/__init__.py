"""The tamper-evident audit log: events, Merkle tree, signed heads, proofs, verification, search."""

from pacsguard.audit import merkle
from pacsguard.audit.canonical import Limits, canonical_bytes, decode, prepare
from pacsguard.audit.event_types import EVENT_TYPES, is_known
from pacsguard.audit.heads import SignedHead, load_public_key, load_signing_key, sign_head, verify_head
from pacsguard.audit.log import AuditLog, AuditOptions, Health, Receipt
from pacsguard.audit.proofs import ConsistencyProof, InclusionProof, check_consistency, check_inclusion
from pacsguard.audit.search import AuditPage, AuditQuery, search
from pacsguard.audit.verify import Finding, VerifyReport, verify
from pacsguard.audit.witness import FileWitness, Witness

__all__ = [
    "EVENT_TYPES",
    "AuditLog",
    "AuditOptions",
    "AuditPage",
    "AuditQuery",
    "ConsistencyProof",
    "FileWitness",
    "Finding",
    "Health",
    "InclusionProof",
    "Limits",
    "Receipt",
    "SignedHead",
    "VerifyReport",
    "Witness",
    "canonical_bytes",
    "check_consistency",
    "check_inclusion",
    "decode",
    "is_known",
    "load_public_key",
    "load_signing_key",
    "merkle",
    "prepare",
    "search",
    "sign_head",
    "verify",
    "verify_head",
]
