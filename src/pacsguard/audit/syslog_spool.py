"""A bounded, append-only on-disk spool of framed syslog records, with a durable cursor.

Records wait here until the Audit Record Repository has them. Layout of the directory:

- ``segment-<first seq, 20 digits>.spool``: append-only files of entries, each
  ``seq`` (8 bytes, big-endian) + ``length`` (4 bytes) + the framed record. A crash can
  leave a torn last entry; readers stop at it and the next append opens a new segment,
  so a torn entry is never followed by good ones in the same file.
- ``cursor.json``: ``{"sent": last seq delivered (-1: none), "dropped": records dropped}``,
  replaced atomically (write, fsync, rename, fsync the directory).

The spool never holds more than ``max_bytes``: when an append would pass the cap, the
oldest segments go first and every undelivered record in them is counted in
``dropped``. Segments whose records are all delivered are deleted.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pacsguard.errors import AuditTransportError

__all__ = ["Spool", "SpoolEntry", "SpoolStatus"]

_HEADER = struct.Struct(">QI")
_CURSOR = "cursor.json"


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One framed record and the sequence number of the event it carries."""

    seq: int
    frame: bytes


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """What the spool holds: for ``/healthz``, the monitor and the CLI."""

    sent: int
    last_spooled: int
    pending: int
    dropped: int
    bytes: int


class Spool:
    """Append-only segments of records not yet delivered. Not thread-safe: one owner."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = 1 << 20) -> None:
        """Open or create the spool in ``directory``; raises ``AuditTransportError`` if unusable."""
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max(max_bytes // 4, 1))
        try:
            directory.mkdir(parents=True, exist_ok=True)
            state = self._read_cursor()
        except (OSError, ValueError) as exc:
            raise AuditTransportError(f"syslog spool {directory} is unusable: {exc}") from exc
        self.sent: int = state[0]
        self.dropped: int = state[1]
        self._active: Path | None = None  # never append to a segment opened before (torn tail)
        self.last_spooled = max([self.sent, *(e.seq for e in self._entries_of(self._segments()[-1:]))])
        self._prune()

    # -- durable cursor -------------------------------------------------------------

    def _read_cursor(self) -> tuple[int, int]:
        path = self.directory / _CURSOR
        if not path.exists():
            return -1, 0  # nothing sent yet: the audit log's first event is seq 0
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["sent"]), int(data["dropped"])

    def _write_cursor(self) -> None:
        tmp = self.directory / (_CURSOR + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump({"sent": self.sent, "dropped": self.dropped}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / _CURSOR)
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- segments -------------------------------------------------------------------

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("segment-*.spool"))

    def _entries_of(self, segments: list[Path]) -> Iterator[SpoolEntry]:
        for segment in segments:
            data = segment.read_bytes()
            pos = 0
            while pos + _HEADER.size <= len(data):
                seq, length = _HEADER.unpack_from(data, pos)
                end = pos + _HEADER.size + length
                if end > len(data):
                    break  # torn tail from a crash: the entry was never acknowledged
                yield SpoolEntry(seq, data[pos + _HEADER.size : end])
                pos = end

    def _size(self) -> int:
        return sum(p.stat().st_size for p in self._segments())

    def has_room(self, frame_bytes: int) -> bool:
        """Whether a record of ``frame_bytes`` fits without dropping anything."""
        return self._size() + _HEADER.size + frame_bytes <= self.max_bytes

    def append(self, seq: int, frame: bytes) -> bool:
        """Spool one record durably; ``False`` if ``seq`` was spooled already (a replay).

        Raises ``AuditTransportError`` if the record cannot be written.
        """
        if seq <= self.last_spooled:
            return False
        entry = _HEADER.pack(seq, len(frame)) + frame
        try:
            self._make_room(len(entry))
            if self._active is None or self._active.stat().st_size + len(entry) > self.segment_bytes:
                self._active = self.directory / f"segment-{seq:020d}.spool"
            with self._active.open("ab") as f:
                f.write(entry)
                f.flush()
                os.fsync(f.fileno())
            self._sync_dir()
        except OSError as exc:
            raise AuditTransportError(f"cannot spool syslog record {seq}: {exc}") from exc
        self.last_spooled = seq
        return True

    def _make_room(self, needed: int) -> None:
        segments = self._segments()
        size = sum(p.stat().st_size for p in segments)
        while segments and size + needed > self.max_bytes:
            oldest = segments.pop(0)
            lost = sum(1 for e in self._entries_of([oldest]) if e.seq > self.sent)
            size -= oldest.stat().st_size
            oldest.unlink()
            if oldest == self._active:
                self._active = None
            if lost:
                self.dropped += lost
                self._write_cursor()

    def pending(self, limit: int | None = None) -> list[SpoolEntry]:
        """Undelivered records, oldest first (at most ``limit``)."""
        out: list[SpoolEntry] = []
        for entry in self._entries_of(self._segments()):
            if entry.seq > self.sent:
                out.append(entry)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def mark_sent(self, seq: int) -> None:
        """Advance the durable cursor to ``seq`` and delete fully delivered segments."""
        if seq <= self.sent:
            return
        self.sent = seq
        self._write_cursor()
        self._prune()

    def _prune(self) -> None:
        seq = self.sent
        segments = self._segments()
        # A segment is done when the next one starts at or before the cursor.
        for current, following in itertools.pairwise(segments):
            if int(following.stem.split("-")[1]) <= seq + 1 and current != self._active:
                current.unlink()
        if segments and seq >= self.last_spooled and segments[-1] != self._active:
            segments[-1].unlink()

    def status(self) -> SpoolStatus:
        """Counts for monitoring."""
        return SpoolStatus(
            sent=self.sent,
            last_spooled=self.last_spooled,
            pending=len(self.pending()),
            dropped=self.dropped,
            bytes=self._size(),
        )
