"""kill -9 a writer under load, again and again: no acknowledged event is lost, none is half-written.

The writer is this file run as a program (``python -m tests.integration.test_audit_crash``):
eight threads append events and print ``seq tag`` for each one whose receipt resolved.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from pacsguard.audit import AuditLog, AuditOptions, decode, load_signing_key, verify
from pacsguard.clock import SystemClock
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef
from pacsguard.storage import make_engine, migrate
from pacsguard.storage.audit_tables import audit_events

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 4
ACKS_BEFORE_KILL = 150


def writer(url: str, key_file: str, run: str) -> None:
    """Append from eight threads until killed, printing each acknowledged event."""
    engine = make_engine(url)
    log = AuditLog(engine, signing_key=load_signing_key(Path(key_file)), options=AuditOptions(head_every_events=40))
    lock = threading.Lock()

    def work(thread: int) -> None:
        for n in range(1_000_000):
            tag = f"{run}-{thread}-{n}"
            event = AuditEvent(
                "study.read",
                SystemClock().now(),
                actor=Actor(f"user{thread}", ip="127.0.0.1"),
                objects=ObjectRef(patient_id=f"P{n % 13}"),
                detail={"tag": tag},
            )
            recorded = log.append(event).result()
            with lock:
                sys.stdout.write(f"{recorded.seq} {tag}\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_and_kill(url: str, key_file: Path, run: str) -> dict[int, str]:
    """Start a writer, let it acknowledge some events, SIGKILL it; return what it acknowledged."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_audit_crash", url, str(key_file), run],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    acked: dict[int, str] = {}
    deadline = time.monotonic() + 120
    while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seq, tag = line.decode().split()
        acked[int(seq)] = tag
    os.kill(process.pid, signal.SIGKILL)
    rest, err = process.communicate(timeout=60)
    for text_line in rest.decode().splitlines(keepends=True):
        if text_line.endswith("\n"):
            seq, tag = text_line.split()
            acked[int(seq)] = tag
    assert len(acked) >= ACKS_BEFORE_KILL, f"the writer acknowledged only {len(acked)} events: {err.decode()[-2000:]}"
    assert process.returncode == -signal.SIGKILL
    return acked


def test_kill_9_under_load_loses_no_acknowledged_event(database_url: str, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    engine = make_engine(database_url)
    migrate(engine)
    acked: dict[int, str] = {}
    for round_ in range(ROUNDS):
        new = run_and_kill(database_url, key_file, f"r{round_}")
        assert not set(new) & set(acked), "a sequence number was acknowledged twice"
        acked.update(new)
    with engine.connect() as conn:
        stored = {
            int(s): decode(bytes(c)) for s, c in conn.execute(select(audit_events.c.seq, audit_events.c.canonical))
        }
    for seq, tag in acked.items():
        assert seq in stored, f"acknowledged event {seq} ({tag}) is lost"
        assert stored[seq].detail["tag"] == tag
    report = verify(engine, key.public_key())
    assert report.ok, report.findings
    assert report.size == len(stored) >= len(acked)
    with AuditLog(engine, signing_key=key) as log:
        assert log.size == report.size
        log.emit(AuditEvent("external.other", SystemClock().now()))
    assert verify(engine, key.public_key()).ok
    engine.dispose()


if __name__ == "__main__":
    writer(sys.argv[1], sys.argv[2], sys.argv[3])
