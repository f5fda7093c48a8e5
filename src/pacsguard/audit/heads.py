"""Signed tree heads: (size, root hash, timestamp) signed with the site's Ed25519 key.

The signed message is the RFC 8785 JSON of ``{"log": "pacsguard-audit", "root_hash":
hex, "size": n, "timestamp": ISO-8601 UTC}``, so an auditor can rebuild it from the
JSON that ``pacsguard audit head`` prints and check it with any Ed25519 library.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pacsguard.audit.canonical import canonical_json
from pacsguard.errors import AuditError

__all__ = [
    "SignedHead",
    "dumps",
    "head_message",
    "key_id",
    "load_public_key",
    "load_signing_key",
    "sign_head",
    "verify_head",
]

_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A signed statement that the log had ``size`` events with this ``root_hash``."""

    size: int
    root_hash: bytes
    timestamp: datetime
    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        """The JSON form printed for witnesses (hashes hex, signature base64)."""
        return {
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp.astimezone(UTC).strftime(_TIME),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SignedHead:
        """Read the JSON form back; raises ``ValueError`` if it is malformed."""
        try:
            return cls(
                size=int(raw["size"]),
                root_hash=bytes.fromhex(raw["root_hash"]),
                timestamp=datetime.strptime(raw["timestamp"], _TIME).replace(tzinfo=UTC),
                key_id=str(raw["key_id"]),
                signature=base64.b64decode(raw["signature"], validate=True),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a signed tree head: {exc}") from exc


def head_message(size: int, root_hash: bytes, timestamp: datetime) -> bytes:
    """The exact bytes that are signed for a tree head."""
    return canonical_json(
        {
            "log": "pacsguard-audit",
            "root_hash": root_hash.hex(),
            "size": size,
            "timestamp": timestamp.astimezone(UTC).strftime(_TIME),
        }
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: hex SHA-256 of its raw bytes, first 16 characters."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_head(size: int, root_hash: bytes, timestamp: datetime, key: Ed25519PrivateKey) -> SignedHead:
    """Sign (size, root_hash, timestamp) with ``key``; the timestamp is kept to the microsecond."""
    when = timestamp.astimezone(UTC)
    return SignedHead(size, root_hash, when, key_id(key.public_key()), key.sign(head_message(size, root_hash, when)))


def verify_head(head: SignedHead, public_key: Ed25519PublicKey) -> bool:
    """True if ``head`` carries a valid signature by ``public_key``."""
    try:
        public_key.verify(head.signature, head_message(head.size, head.root_hash, head.timestamp))
    except (InvalidSignature, ValueError):
        return False
    return head.key_id == key_id(public_key)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted Ed25519 private key (PEM); raises ``AuditError`` naming the file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise AuditError(f"{path}: no signing key; create one with 'pacsguard pki init'") from exc
    except (ValueError, TypeError, OSError) as exc:
        raise AuditError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path}: the audit signing key must be Ed25519")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key (PEM), or the public half of a private key file."""
    try:
        data = path.read_bytes()
        key: object = (
            serialization.load_pem_private_key(data, password=None).public_key()
            if b"PRIVATE KEY" in data
            else serialization.load_pem_public_key(data)
        )
    except (ValueError, TypeError, OSError) as exc:
        raise AuditError(f"{path}: not a readable PEM key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{path}: the audit signing key must be Ed25519")
    return key


def dumps(head: SignedHead) -> str:
    """One JSON line for a head (what witnesses store)."""
    return json.dumps(head.to_json(), sort_keys=True)
