"""kill -9 the live monitor again and again: every alert is stored exactly once and the
durable cursor never skips an event nor consumes one twice.

The monitor is this file run as a program (``python -m tests.integration.test_monitor_crash``):
it tails the audit log in small batches and prints its cursor after every step.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from pacsguard.audit import AuditLog
from pacsguard.audit.reader import LogReader
from pacsguard.clock import FakeClock, SystemClock
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef, Outcome
from pacsguard.monitor import Engine, load_rules
from pacsguard.monitor.service import MonitorOptions, MonitorService
from pacsguard.monitor.store import MonitorStore
from pacsguard.storage import make_engine, migrate
from pacsguard.storage.monitor_tables import monitor_alerts

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 600
BATCH = 20


def monitor(url: str) -> None:
    """Tail the log until every event is consumed, printing the cursor after each step."""
    svc = MonitorService(
        make_engine(url),
        lambda: Engine(load_rules()),
        options=MonitorOptions(batch=BATCH, horizon=timedelta(days=3650)),
    )
    print(f"start {svc.cursor}", flush=True)
    while svc.cursor < EVENTS:
        svc.step()
        print(f"step {svc.cursor}", flush=True)
    print("done", flush=True)


def _events(clock: FakeClock) -> list[AuditEvent]:
    rng = random.Random(6)
    out = []
    for n in range(EVENTS):
        clock.advance(seconds=rng.choice((1, 5, 30)))
        user = f"user{rng.randrange(12)}"
        if rng.random() < 0.2:
            out.append(
                AuditEvent(
                    "principal.created", clock.now(), actor=Actor(user), objects=ObjectRef(target_principal=f"new{n}")
                )
            )
        else:
            out.append(
                AuditEvent(
                    "login.failure", clock.now(), outcome=Outcome.FAILURE, actor=Actor(user, ip=f"10.0.0.{n % 3}")
                )
            )
    return out


def _run_until_killed(url: str, rng: random.Random) -> tuple[int, list[int], bool]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_monitor_crash", url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    start = -2
    cursors: list[int] = []
    finished = False
    steps_before_kill = rng.randint(1, 6)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode()
        if not line:
            break
        word, *rest = line.split()
        if word == "start":
            start = int(rest[0])
        elif word == "step":
            cursors.append(int(rest[0]))
            if len(cursors) >= steps_before_kill:
                # let it get into the next batch before the kill, at a random point
                time.sleep(rng.random() * 0.02)
                break
        elif word == "done":
            finished = True
            break
    os.kill(process.pid, signal.SIGKILL)
    _out, err = process.communicate(timeout=60)
    assert start != -2, err.decode()
    return start, cursors, finished


def test_sigkill_mid_stream_loses_and_doubles_nothing(database_url: str) -> None:
    url = database_url
    db = make_engine(url)
    migrate(db)
    clock = FakeClock()
    with AuditLog(db, clock=SystemClock()) as log:
        for event in _events(clock):
            log.append(event)
        log.emit(AuditEvent("marker", clock.now()))  # the last one: every earlier append is durable
    expected = {a.key for a in Engine(load_rules()).run(LogReader(db).events_after(-1, EVENTS + 10))}
    assert len(expected) > 100

    rng = random.Random(61)
    committed = -1
    kills = 0
    for _ in range(200):
        start, cursors, finished = _run_until_killed(url, rng)
        assert start >= committed  # the durable cursor never goes back...
        assert all(c - p <= BATCH for p, c in zip([start, *cursors], cursors, strict=False))  # ...nor skips
        committed = max([start, *cursors])
        if finished:
            break
        kills += 1
    assert finished
    assert kills >= 5

    with db.connect() as conn:
        stored = list(conn.execute(select(monitor_alerts.c.key)).scalars())
    assert len(stored) == len(set(stored))
    assert set(stored) == expected
    checkpoint = MonitorStore(db).checkpoint()
    assert checkpoint is not None
    assert checkpoint.last_seq == EVENTS
    assert checkpoint.snapshot["stats"]["processed"] == EVENTS + 1  # no event consumed twice
    assert checkpoint.snapshot["stats"]["duplicates"] == 0
    db.dispose()


if __name__ == "__main__":
    monitor(sys.argv[1])
