"""One consuming monitor per database: the others stand by and take over.

Several gateways may serve one site's database; each starts a monitor, but only the
leader tails the log, follows alerts up and sends notifications (two consumers would
race on the cursor and mail every alert twice). Leadership is a lock the database
releases by itself when its holder dies:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection
  kept for the purpose; advisory locks are per database, and the server drops the lock
  when the session ends, so a crashed leader's lock frees without any timeout of ours.
- SQLite: an exclusive ``flock`` on ``<database>.monitor-leader`` next to the database
  file. SQLite serves one host only, so a file lock covers every process that can reach
  the database; the kernel drops it when the process dies.

A standby asks again on every poll; when it becomes leader it restores the engine from
the last checkpoint the old leader committed, so nothing is missed or done twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

__all__ = ["ADVISORY_KEY", "FileLeadership", "Leadership", "PgLeadership", "leadership_for", "someone_leads"]

log = logging.getLogger(__name__)

# A fixed 63-bit key derived from a name, so no other pacsguard lock collides with it.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"pacsguard.monitor.leader").digest()[:8], "big") >> 1


class Leadership(Protocol):
    """A lock only one monitor instance holds at a time."""

    @property
    def held(self) -> bool:
        """Whether this instance held the lock at the last ``acquire``."""
        ...

    def acquire(self) -> bool:
        """Take the lock if it is free, or check it is still held; never blocks."""
        ...

    def release(self) -> None:
        """Give the lock up (a standby takes over at its next poll)."""
        ...


class PgLeadership:
    """``pg_try_advisory_lock`` on a dedicated autocommit connection."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self._engine = engine
        self._key = key
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def acquire(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except DBAPIError:
                log.warning("monitor leadership lost: the database connection failed")
                self._drop()
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar_one())
        except DBAPIError:
            conn.close()
            return False
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError):
            self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(DBAPIError):
                conn.invalidate()  # never back to the pool: the session (and any lock) ends
                conn.close()


class FileLeadership:
    """An exclusive, non-blocking ``flock`` on a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def leadership_for(engine: Engine) -> Leadership:
    """The leadership lock that fits the database: advisory lock on PostgreSQL, a file
    lock beside an SQLite file. Raises ``ValueError`` for another backend."""
    if engine.dialect.name == "postgresql":
        return PgLeadership(engine)
    if engine.dialect.name == "sqlite" and engine.url.database:
        return FileLeadership(Path(f"{engine.url.database}.monitor-leader"))
    raise ValueError(f"no monitor leadership lock for {engine.dialect.name} {engine.url.database!r}")


def someone_leads(engine: Engine) -> bool:
    """Whether a monitor instance holds the lead on this database now (the lock is tried
    and, if free, given back at once)."""
    probe = leadership_for(engine)
    if probe.acquire():
        probe.release()
        return False
    return True
