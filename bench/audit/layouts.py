"""The audit log's search indexes at scale: append rate and search time by index layout.

    .venv/bin/python bench/audit/layouts.py DB [--events 30000] [--rounds 2]

DB is a filled log (``bench/audit/run.py --scale-only --scale 1000000 --keep DIR`` leaves
``DIR/scale-1000000.db``). For each layout, a copy of DB gets that layout's three search
indexes (patient, principal, study), then bursts of 1,000 events are appended to it and
searches for one patient, one principal and one study are timed. The appended events
read studies of random patients (one of 200,000) by random principals (one of 500), as
a hospital's reads do; ``run.event``'s own events take their keys in near-sequential
order (``--sequential`` uses those). The layouts:

- ``flat``: ``(key, seq)``, the layout before migration 0010;
- ``bucket N``: ``(seq >> N, key, seq)``: an append only touches the index pages of the
  newest 2^N events, and a search walks the buckets;
- ``none``: no search indexes (the floor: what the three indexes cost).

Rounds alternate the layouts so that the machine's load drifts over all of them alike.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "audit"))

from run import CPU_US, START, appends_batched, event  # noqa: E402

from pacsguard.domain.events import Actor, AuditEvent, ObjectRef  # noqa: E402
from pacsguard.storage import make_engine  # noqa: E402

console = Console()
KEYS = (("patient", "patient_id"), ("principal", "principal_id"), ("study", "study_uid"))


def layout(engine: Engine, bits: int | None, *, indexed: bool = True) -> None:
    """Replace the three search indexes by ``(seq >> bits, key, seq)`` (``(key, seq)`` when
    ``bits`` is None; none at all unless ``indexed``)."""
    with engine.begin() as conn:
        for name, _column in KEYS:
            conn.execute(text(f"DROP INDEX IF EXISTS ix_audit_events_{name}_seq"))
            conn.execute(text(f"DROP INDEX IF EXISTS ix_audit_events_{name}_bucket"))
        if not indexed:
            return
        for name, column in KEYS:
            lead = f"(seq >> {bits}), " if bits is not None else ""
            conn.execute(text(f"CREATE INDEX ix_audit_events_{name}_bucket ON audit_events ({lead}{column}, seq)"))


def random_read(i: int) -> AuditEvent:
    """Event ``i`` of a hospital's day: a random principal reads a random patient's study."""
    rng = random.Random(i)
    patient = rng.randrange(200_000)
    return AuditEvent(
        "study.read",
        START + timedelta(milliseconds=i),
        actor=Actor(f"user{rng.randrange(500)}", ("radiologist",), zone="north", ip=f"10.0.{i % 7}.{i % 250}"),
        objects=ObjectRef(
            patient_id=f"P{patient}", study_uid=f"1.2.840.113619.2.{patient}.{rng.randrange(5)}", count=120
        ),
        detail={"path": f"/dicomweb/studies/1.2.840.113619.2.{patient}", "bytes": 52_428_800},
    )


def search_ms(engine: Engine, bits: int | None, column: str, value: str, limit: int = 100) -> float:
    """Milliseconds for the first page (``limit`` rows, oldest first) of events with ``column = value``."""
    t0 = time.perf_counter()
    with engine.connect() as conn:
        if bits is None:
            sql = f"SELECT seq, canonical FROM audit_events WHERE {column} = :v ORDER BY seq LIMIT :n"
            rows = conn.execute(text(sql), {"v": value, "n": limit}).all()
        else:
            last = conn.execute(text("SELECT max(seq) FROM audit_events")).scalar_one()
            sql = (
                f"SELECT seq, canonical FROM audit_events WHERE (seq >> {bits}) = :b AND {column} = :v"
                " ORDER BY seq LIMIT :n"
            )
            rows = []
            for bucket in range((last >> bits) + 1):
                rows += conn.execute(text(sql), {"b": bucket, "v": value, "n": limit - len(rows)}).all()
                if len(rows) >= limit:
                    break
    assert rows, (column, value)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--events", type=int, default=30_000, help="events appended per layout and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bits", type=str, default="16,14,12", help="bucket widths to compare")
    parser.add_argument("--sequential", action="store_true", help="append run.event's events instead")
    args = parser.parse_args()
    layouts: list[tuple[str, int | None, bool]] = [("flat", None, True)]
    layouts += [(f"bucket {b}", int(b), True) for b in args.bits.split(",")]
    layouts.append(("none", None, False))
    results: dict[str, list[tuple[float, float, list[float]]]] = {name: [] for name, _, _ in layouts}
    console.print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    for round_ in range(args.rounds):
        for name, bits, indexed in layouts if round_ % 2 == 0 else reversed(layouts):
            copy = args.database.with_name(f"layout-{name.replace(' ', '')}.db")
            shutil.copyfile(args.database, copy)
            engine = make_engine(f"sqlite:///{copy}")
            try:
                layout(engine, bits, indexed=indexed)
                rate = appends_batched(engine, args.events, make=event if args.sequential else random_read)
                searches = [search_ms(engine, bits, column, value) for column, value in _probes()] if indexed else []
                results[name].append((rate, CPU_US[-1], searches))
                console.print(f"  round {round_ + 1}, {name}: {rate:,.0f}/s, search ms {searches}")
            finally:
                engine.dispose()
                for path in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
                    path.unlink(missing_ok=True)
    table = RichTable(title=f"bursts of 1,000 into a copy of {args.database.name}; first page of 100 by key")
    for column in ["layout", "appends/s (rounds)", "CPU µs/event", "patient ms", "principal ms", "study ms"]:
        table.add_column(column, justify="left" if column == "layout" else "right")
    for name, runs in results.items():
        rates = " / ".join(f"{r:,.0f}" for r, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        cells = [f"{statistics.median(s[i] for _, _, s in runs):.1f}" if runs[0][2] else "—" for i in range(3)]
        table.add_row(name, rates, f"{cpu:.0f}", *cells)
    console.print(table)
    console.print(f"load average at end: {os.getloadavg()[0]:.1f}")


def _probes() -> list[tuple[str, str]]:
    """One patient, one principal and one study of ``run.event``'s generator, named by early events."""
    return [("patient_id", "P123"), ("principal_id", "user7"), ("study_uid", "1.2.840.113619.2.500000")]


if __name__ == "__main__":
    main()
