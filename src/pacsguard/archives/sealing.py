"""Instance files at rest: AES-256-GCM with a site key, a fresh nonce per file, and the
SOP Instance UID as associated data, so a file moved under another instance's name fails
authentication (NIST SP 800-38D; ``cryptography``'s ``AESGCM``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pacsguard.errors import ArchiveError, ArchiveIntegrityError

__all__ = ["KEY_BYTES", "Sealer", "load_site_key"]

KEY_BYTES = 32
NONCE_BYTES = 12
MAGIC = b"PGA1"  # format marker: magic, 96-bit nonce, ciphertext with its 128-bit tag


def load_site_key(path: Path) -> bytes:
    """Read the 32-byte site key, creating it (mode 0600) if missing; raises ``ArchiveError``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ArchiveError(
                f"site key {path} holds {len(key)} bytes, not {KEY_BYTES}; restore it from backup"
            ) from None
        return key
    except OSError as exc:
        raise ArchiveError(f"cannot create the site key {path}: {exc.strerror}") from None
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


class Sealer:
    """Encrypts and authenticates instance files with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ArchiveError(f"an AES-256 key has {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, data: bytes, sop_uid: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, sop_uid.encode("ascii"))

    def open(self, blob: bytes, sop_uid: str) -> bytes:
        """The plaintext; raises ``ArchiveIntegrityError`` if altered, truncated or swapped."""
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
            raise ArchiveIntegrityError(f"stored file of instance {sop_uid} is not a sealed instance file")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], sop_uid.encode("ascii"))
        except InvalidTag:
            raise ArchiveIntegrityError(
                f"stored file of instance {sop_uid} fails authentication: altered or swapped"
            ) from None
