"""Witnesses: places a signed tree head is pushed to, outside the database.

An auditor who keeps heads from a witness can later prove that the log only grew
(consistency proofs) even if the database and its machine were taken over. ``Witness``
is a small protocol so syslog or HTTP witnesses can be added beside ``FileWitness``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from pacsguard.audit.heads import SignedHead, dumps

__all__ = ["FileWitness", "Witness"]


class Witness(Protocol):
    """Receives every signed tree head; raising ``OSError`` marks the push as failed."""

    def push(self, head: SignedHead) -> None: ...


class FileWitness:
    """Appends each head as one JSON line to a file (fsynced), e.g. on another volume."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def push(self, head: SignedHead) -> None:
        """Append ``head``; raises ``OSError`` if the file cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(dumps(head) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def heads(self) -> list[SignedHead]:
        """Every head written so far, oldest first."""
        if not self.path.exists():
            return []
        return [SignedHead.from_json(json.loads(line)) for line in self.path.read_text().splitlines() if line.strip()]
