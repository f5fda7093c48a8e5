"""A real PostgreSQL server for the tests: Debian's binaries, a temporary data directory,
a free port on 127.0.0.1, trust authentication, stopped when the session ends.

Run as root (as CI does), the server runs as the ``postgres`` user, because PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg


def find_bin_dir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    return next((c for c in candidates if (c / "initdb").exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One throw-away cluster. ``url(db)`` gives an SQLAlchemy URL for a database on it."""

    def __init__(self, root: Path) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL is not installed: run 'make test' (it installs it) or apt-get install postgresql"
            )
        self.bin = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.user = "pacsguard"
        self._as: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres", "postgres")
        self._process: subprocess.Popen[bytes] | None = None

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True)

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        log = self.root / "server.log"
        self._process = subprocess.Popen(
            [
                *self._as,
                str(self.bin / "postgres"),
                "-D", str(self.data),
                "-p", str(self.port),
                "-k", str(self.root),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=on",
                "-c", "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb") if not self._as else subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.dsn("postgres"), connect_timeout=1).close()
                return
            if self._process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start (code {self._process.returncode})")
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not accept connections within 30 s")

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        # pg_ctl signals the postmaster itself ("immediate": a throw-away cluster needs no checkpoint);
        # a signal to runuser would not reach it.
        stop = [*self._as, str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30"]
        if subprocess.run(stop, capture_output=True, check=False).returncode != 0:
            self._process.kill()
        self._process.wait(timeout=30)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server in a fresh directory under /tmp (reachable by the ``postgres`` user)."""
    root = Path(tempfile.mkdtemp(prefix="pacsguard-pg-"))
    root.chmod(0o755)
    server = PostgresServer(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
