"""Live event-to-alert latency through the durable tail: commit in the audit log ->
alert committed by the monitor (one transaction with the cursor and the engine snapshot).

A writer appends events to a real audit log (SQLite file, WAL, full sync) at a steady
rate; one in ``--every`` is a directory change the ``admin.change`` rule alerts on at
once. The monitor runs ``MonitorService.run`` in a thread. Latency is measured per
alerting event from the moment its append is durable (receipt resolved) to the moment
the alert row is committed. Two modes: polling only (150 ms), and with the wake-up hook
called after each append (as the audit log will do).

    .venv/bin/python bench/monitor/live_latency.py [--events 2000] [--rate 500] [--every 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as Engine_

from pacsguard.audit import AuditLog
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef
from pacsguard.monitor import Alert, Engine, load_rules
from pacsguard.monitor.service import MonitorService
from pacsguard.monitor.store import MonitorStore
from pacsguard.storage import make_engine, migrate


def run(events: int, rate: float, every: int, wake: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(db)
        rules = load_rules()
        committed: dict[int, float] = {}
        with AuditLog(db) as log:
            svc = MonitorService(db, lambda: Engine(rules))
            timed = TimedStore(db)
            svc.store = timed
            stop = threading.Event()
            tail = threading.Thread(target=svc.run, args=(stop,), daemon=True)
            tail.start()
            for n in range(events):
                alerting = n % every == 0
                kind = "principal.created" if alerting else "study.read"
                event = AuditEvent(
                    kind, datetime.now(UTC), actor=Actor(f"u{n % 50}"), objects=ObjectRef(study_uid=f"1.{n}")
                )
                recorded = log.append(event).result()
                if alerting and recorded.seq is not None:
                    committed[recorded.seq] = time.time()
                if wake:
                    svc.wake()
                time.sleep(1 / rate)
            while svc.cursor < events - 1:
                time.sleep(0.05)
            stop.set()
            svc.wake()
            tail.join()
        db.dispose()
    return [(timed.done[seq] - committed[seq]) * 1000 for seq in committed if seq in timed.done]


class TimedStore(MonitorStore):
    """The real store, noting when each batch's transaction has committed."""

    def __init__(self, db: Engine_) -> None:
        super().__init__(db)
        self.done: dict[int, float] = {}

    def commit(self, alerts: Sequence[tuple[Alert, bool]], *args: Any, **kwargs: Any) -> int:
        fresh = super().commit(alerts, *args, **kwargs)
        now = time.time()
        for alert, _live in alerts:
            self.done.setdefault(alert.trigger_seq, now)
        return fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0, help="events per second offered")
    parser.add_argument("--every", type=int, default=20, help="one alerting event in this many")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'mode':<22}{'alerts':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, wake in (("poll 150 ms", False), ("poll + wake-up hook", True)):
        lat = sorted(run(args.events, args.rate, args.every, wake))
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"{label:<22}{len(lat):>8}{statistics.median(lat):>10.1f}{p99:>10.1f}{lat[-1]:>10.1f}")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
