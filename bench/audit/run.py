"""Audit log benchmark: durable appends/s, a plain-INSERT baseline, verification and proofs at scale.

    .venv/bin/python bench/audit/run.py            # full: 1,000,000 events for verify/proofs
    .venv/bin/python bench/audit/run.py --quick    # smaller sizes, for a smoke run

Appends are measured on SQLite (WAL, synchronous=FULL) and on a real PostgreSQL
(fsync=on) started with tests/postgres.py. "Durable" means the caller waited for its
receipt: the event was committed before the call returned. The baseline inserts the
same events as plain JSON rows (same search columns and indexes, no hashing, no tree,
no heads, no futures) so the ratio shows what tamper-evidence costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import BigInteger, Column, Engine, Index, MetaData, String, Table, Text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.postgres import running_postgres  # noqa: E402

from pacsguard.audit import AuditLog, AuditOptions, AuditQuery, merkle, prepare, verify  # noqa: E402
from pacsguard.audit.log import _rows  # noqa: E402
from pacsguard.audit.proofs import inclusion  # noqa: E402
from pacsguard.audit.search import search  # noqa: E402
from pacsguard.audit.store import AuditStore  # noqa: E402
from pacsguard.clock import SystemClock  # noqa: E402
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef  # noqa: E402
from pacsguard.storage import make_engine, migrate  # noqa: E402

console = Console()
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

plain = MetaData()
plain_events = Table(
    "bench_plain_events",
    plain,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("occurred_us", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("principal_id", String(2048)),
    Column("ip", String(2048)),
    Column("patient_id", String(2048)),
    Column("study_uid", String(2048)),
    Column("body", Text, nullable=False),
)
for _name, _col in [("patient", "patient_id"), ("principal", "principal_id"), ("study", "study_uid")]:
    Index(f"ix_bench_plain_{_name}", plain_events.c[_col], plain_events.c.seq)
Index("ix_bench_plain_occurred", plain_events.c.occurred_us)


def event(i: int) -> AuditEvent:
    """A realistic study.read event (about 330 bytes canonical)."""
    return AuditEvent(
        "study.read",
        START + timedelta(milliseconds=i),
        actor=Actor(
            f"user{i % 500}", ("radiologist",), zone="north", session_id=f"s{i % 2000}", ip=f"10.0.{i % 7}.{i % 250}"
        ),
        objects=ObjectRef(patient_id=f"P{i % 50_000}", study_uid=f"1.2.840.113619.2.{i}", count=120),
        detail={"path": f"/dicomweb/studies/1.2.840.113619.2.{i}", "bytes": 52_428_800},
    )


CPU_US: list[float] = []  # CPU µs per operation of each timed() run, in order


def timed(work: Callable[[], int]) -> float:
    """Run ``work`` (returns how many operations it did); operations per second.

    Also appends this process's CPU time per operation (all threads; for PostgreSQL the
    server's CPU is not counted) to ``CPU_US``: a figure the machine's load moves less.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    n = work()
    CPU_US.append((time.process_time() - c0) / n * 1e6)
    return n / (time.perf_counter() - t0)


def open_log(engine: Engine) -> AuditLog:
    return AuditLog(engine, signing_key=Ed25519PrivateKey.generate(), options=AuditOptions(head_every_events=10_000))


def appends_single(engine: Engine, n: int) -> float:
    with open_log(engine) as log:

        def work() -> int:
            for i in range(n):
                log.append(event(i)).result()
            return n

        return timed(work)


def appends_concurrent(engine: Engine, callers: int, per_caller: int) -> float:
    with open_log(engine) as log:

        def caller(c: int) -> None:
            for i in range(per_caller):
                log.append(event(c * per_caller + i)).result()

        def work() -> int:
            threads = [threading.Thread(target=caller, args=(c,)) for c in range(callers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return callers * per_caller

        return timed(work)


def appends_async(engine: Engine, callers: int, per_caller: int) -> float:
    """``callers`` coroutines on one event loop, each awaiting its receipt (the gateway's case)."""
    with open_log(engine) as log:

        async def caller(c: int) -> None:
            for i in range(per_caller):
                await log.append(event(c * per_caller + i))

        async def everyone() -> None:
            await asyncio.gather(*(caller(c) for c in range(callers)))

        def work() -> int:
            asyncio.run(everyone())
            return callers * per_caller

        return timed(work)


def appends_batched(engine: Engine, n: int, window: int = 1000, make: Callable[[int], AuditEvent] = event) -> float:
    """One coroutine appends ``window`` events (``make(i)``) without awaiting, then awaits their
    receipts (an ATNA receiver taking a burst of messages), and so on."""
    with open_log(engine) as log:

        async def receiver() -> None:
            for first in range(0, n, window):
                receipts = [log.append(make(i)) for i in range(first, min(first + window, n))]
                for receipt in receipts:
                    await receipt

        def work() -> int:
            asyncio.run(receiver())
            return n

        return timed(work)


def raw_rows(n: int) -> list[tuple[list[tuple[object, ...]], list[tuple[int, int, bytes]]]]:
    """The log's own rows (events and tree nodes) for ``n`` events, in batches of 1,000, built untimed."""
    edge = merkle.RightEdge()
    prepared = [prepare(event(i)) for i in range(n)]
    return [_rows(prepared[lo : lo + 1000], edge) for lo in range(0, n, 1000)]


def raw_floor(engine: Engine, n: int, per_commit: int) -> float:
    """The database's floor: the log's exact rows, prebuilt, inserted by its own store, committed
    every ``per_commit`` events (no encoding, no hashing, no futures, no writer thread)."""
    batches = raw_rows(n)
    store = AuditStore(engine)

    def work() -> int:
        for rows, nodes in batches:
            for lo in range(0, len(rows), per_commit):
                store.append(rows[lo : lo + per_commit], nodes if lo == 0 else [], None)
        return n

    return timed(work)


def plain_rows(first: int, n: int) -> list[dict[str, object]]:
    rows = []
    for i in range(first, first + n):
        e = event(i)
        body = json.dumps(
            {"type": e.type, "at": e.occurred_at.isoformat(), "actor": e.actor.principal_id, "detail": dict(e.detail)}
        )
        us = (e.occurred_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        rows.append(
            {
                "seq": i,
                "occurred_us": us,
                "type": e.type,
                "outcome": "success",
                "principal_id": e.actor.principal_id,
                "ip": e.actor.ip,
                "patient_id": e.objects.patient_id,
                "study_uid": e.objects.study_uid,
                "body": body,
            }
        )
    return rows


def baseline_single(engine: Engine, n: int) -> float:
    """One INSERT and one commit per event (building the row counted in)."""
    plain.create_all(engine)

    def work() -> int:
        for i in range(n):
            with engine.begin() as conn:
                conn.execute(plain_events.insert(), plain_rows(10_000_000 + i, 1))
        return n

    return timed(work)


def baseline_batched(engine: Engine, n: int, batch: int = 2000) -> float:
    """INSERTs in transactions of ``batch`` rows: the ceiling for any group commit."""
    plain.create_all(engine)

    def work() -> int:
        for first in range(0, n, batch):
            with engine.begin() as conn:
                conn.execute(plain_events.insert(), plain_rows(first, min(batch, n - first)))
        return n

    return timed(work)


Row = tuple[str, str, float, float]  # mode, backend, events/s, CPU µs per event


def fresh(url: Callable[[str], str], name: str) -> Engine:
    engine = make_engine(url(name))
    migrate(engine)
    return engine


def measure_appends(backend: str, url: Callable[[str], str], sizes: dict[str, int]) -> list[Row]:
    """Each mode on a fresh database, each followed by its peers: plain INSERTs of JSON rows (same
    indexes), and the raw floor (the log's own rows, prebuilt, in commits of the same size)."""
    single, total, burst = sizes["single"], 50 * sizes["per_caller"], sizes["batch"]
    rows: list[tuple[str, Callable[[], float]]] = [
        (f"1 caller, durable ({single:,} events)", lambda: appends_single(fresh(url, "single"), single)),
        ("  peer: plain INSERT, 1 per commit", lambda: baseline_single(fresh(url, "single-plain"), single)),
        ("  peer: raw floor, 1 per commit", lambda: raw_floor(fresh(url, "single-raw"), single, 1)),
        (
            f"50 callers, durable ({total:,} events)",
            lambda: appends_concurrent(fresh(url, "many"), 50, sizes["per_caller"]),
        ),
        (
            f"50 async callers, one loop ({total:,})",
            lambda: appends_async(fresh(url, "async"), 50, sizes["per_caller"]),
        ),
        (f"bursts of 1,000, then await ({burst:,})", lambda: appends_batched(fresh(url, "batch"), burst)),
        ("  peer: plain INSERT, 1,000 per commit", lambda: baseline_batched(fresh(url, "batch-plain"), burst, 1000)),
        ("  peer: raw floor, 1,000 per commit", lambda: raw_floor(fresh(url, "batch-raw"), burst, 1000)),
    ]
    results: list[Row] = []
    for mode, run in rows:
        rate = run()
        results.append((mode, backend, rate, CPU_US[-1]))
        console.print(f"  {mode}: {rate:,.0f}/s")
    return results


def fill(engine: Engine, key: Ed25519PrivateKey, n: int) -> None:
    """Append events ``0..n-1`` (pipelined by one caller, committed in groups), then sign a head."""
    with AuditLog(engine, signing_key=key, options=AuditOptions(head_every_events=10_000, queue_limit=20_000)) as log:
        window = []
        for i in range(n):
            window.append(log.append(event(i)))
            if len(window) >= 10_000:
                for r in window:
                    r.result()
                window.clear()
                console.print(f"  filled {i + 1:,}", end="\r")
        for r in window:
            r.result()
        log.sign_head()
    console.print()


def timed_verify(engine: Engine, key: Ed25519PrivateKey, workers: int, n: int, root: bytes) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and its worker processes) of one ``verify``."""
    before = os.times()
    t0 = time.perf_counter()
    report = verify(engine, key.public_key(), workers=workers)
    wall = time.perf_counter() - t0
    after = os.times()
    assert report.ok, report.findings
    assert (report.size, report.root) == (n, root)
    cpu = sum(after[:4]) - sum(before[:4])  # user + system, self + children
    return wall, cpu


def measure_scale(directory: Path, sizes: list[int], proofs: int) -> dict[int, dict[str, float]]:
    """Fill a database of each size (``scale-N.db`` in ``directory``, skipped if one of that size is
    already there: see ``--keep``), then time ``verify`` with 2 workers and 1, and proofs."""
    key = kept_key(directory / "scale-key.raw")
    figures: dict[int, dict[str, float]] = {}
    for n in sizes:
        engine = make_engine(f"sqlite:///{directory / f'scale-{n}.db'}")
        migrate(engine)
        store = AuditStore(engine)
        row = {"fill_rate": float("nan")}  # nan: a kept database, not filled in this run
        if store.size() != n:
            if store.size():
                raise SystemExit(f"{directory}/scale-{n}.db holds {store.size():,} events, not {n:,}: remove it")
            t0 = time.perf_counter()
            fill(engine, key, n)
            row["fill_rate"] = n / (time.perf_counter() - t0)
        head = store.latest_head()
        assert head is not None
        assert head.size == n
        row["verify_2"], row["verify_2_cpu"] = timed_verify(engine, key, 2, n, head.root_hash)
        row["verify_1"], row["verify_1_cpu"] = timed_verify(engine, key, 1, n, head.root_hash)
        row.update(measure_proofs(engine, n, proofs))
        row.update(measure_search(engine))
        engine.dispose()
        row["burst_rate"], row["burst_cpu"] = bursts_on_a_copy(directory / f"scale-{n}.db")
        figures[n] = row
    return figures


def bursts_on_a_copy(database: Path, n: int = 30_000) -> tuple[float, float]:
    """Bursts of 1,000 appended to a copy of ``database`` (so a kept one stays its size):
    what the log does once its search indexes are large, against the fresh-database modes."""
    copy = database.with_name(database.stem + "-bursts.db")
    shutil.copyfile(database, copy)
    engine = make_engine(f"sqlite:///{copy}")
    try:
        rate = appends_batched(engine, n)
        return rate, CPU_US[-1]
    finally:
        engine.dispose()
        for path in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
            path.unlink(missing_ok=True)


class _Discard:
    """An event sink that keeps nothing (the search's own ``audit.log.used`` record)."""

    def emit(self, event: AuditEvent) -> None:
        pass


def measure_search(engine: Engine, probes: int = 20) -> dict[str, float]:
    """Median ms of the first page (100) of ``search`` by one patient (20 events per 1M: the
    walk crosses every search bucket) and by one principal (thousands of events)."""
    reader, rng = Actor("officer", ("privacy-officer",)), random.Random(11)

    def ms(query: AuditQuery) -> float:
        t0 = time.perf_counter()
        page = search(engine, query, reader=reader, sink=_Discard(), clock=SystemClock())
        elapsed = (time.perf_counter() - t0) * 1000
        assert page.events, query
        return elapsed

    patients = [ms(AuditQuery(patient=f"P{rng.randrange(50_000)}")) for _ in range(probes)]
    principals = [ms(AuditQuery(actor=f"user{rng.randrange(500)}")) for _ in range(probes)]
    return {"search_patient_ms": statistics.median(patients), "search_principal_ms": statistics.median(principals)}


def kept_key(path: Path) -> Ed25519PrivateKey:
    """The signing key of the scale databases: read from ``path``, or made and written there."""
    if path.exists():
        return Ed25519PrivateKey.from_private_bytes(path.read_bytes())
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes_raw())
    return key


def measure_proofs(engine: Engine, n: int, proofs: int) -> dict[str, float]:
    rng = random.Random(7)
    times, check_times = [], []
    for seq in rng.sample(range(n), proofs):
        t0 = time.perf_counter()
        proof = inclusion(engine, seq)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert merkle.verify_inclusion(proof.leaf_hash, seq, proof.size, proof.path, proof.root)
        check_times.append(time.perf_counter() - t0)
    return {
        "proof_ms": statistics.median(times) * 1000,
        "proof_p99_ms": sorted(times)[int(len(times) * 0.99) - 1] * 1000,
        "check_us": statistics.median(check_times) * 1e6,
    }


def print_appends(stack: ExitStack, directory: Path, sizes: dict[str, int]) -> None:
    console.print("[bold]appends[/] (SQLite)")
    rows = measure_appends("SQLite", lambda name: f"sqlite:///{directory / name}.db", sizes)
    console.print("[bold]appends[/] (PostgreSQL)")
    server = stack.enter_context(running_postgres())
    rows += measure_appends("PostgreSQL", server.create_database, sizes)
    table = RichTable(title="durable appends per second (and this process's CPU µs per event)")
    for column in ["mode", "backend", "events/s", "CPU µs/event"]:
        table.add_column(column, justify="left" if column in ("mode", "backend") else "right")
    for mode, backend, rate, cpu in rows:
        table.add_row(mode, backend, f"{rate:,.0f}", f"{cpu:.0f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (10,000 and 100,000 events at scale)")
    parser.add_argument("--scale", type=str, default=None, help="comma-separated sizes for verify/proofs")
    parser.add_argument("--scale-only", action="store_true", help="skip the append measurements")
    parser.add_argument("--appends-only", action="store_true", help="skip the verify/proof measurements")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the scale databases (and their key) in this directory and reuse them in later runs",
    )
    args = parser.parse_args()
    quick = {"single": 300, "per_caller": 200, "batch": 20_000}
    sizes = quick if args.quick else {"single": 1000, "per_caller": 600, "batch": 100_000}
    scale = (
        [int(x) for x in args.scale.split(",")]
        if args.scale
        else [10_000, 100_000]
        if args.quick
        else [100_000, 1_000_000]
    )
    console.print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pacsguard-bench-")))
        if not args.scale_only:
            print_appends(stack, directory, sizes)
        if not args.appends_only:
            console.print(f"[bold]scale[/]: {', '.join(f'{n:,}' for n in scale)} events on SQLite")
            kept = args.keep if args.keep is not None else directory
            kept.mkdir(parents=True, exist_ok=True)
            print_scale(measure_scale(kept, scale, 200))
    console.print(f"load average at end: {os.getloadavg()[0]:.1f}")


def print_scale(figures: dict[int, dict[str, float]]) -> None:
    table = RichTable(title="verify and proofs at scale (SQLite)")
    table.add_column("measure")
    for n in figures:
        table.add_column(f"{n:,} events", justify="right")
    lines = [
        ("fill: pipelined appends /s (nan: kept)", "{fill_rate:,.0f}"),
        ("verify, 2 worker processes: wall s (CPU s)", "{verify_2:.1f} ({verify_2_cpu:.1f})"),
        ("verify, 1 process: wall s (CPU s)", "{verify_1:.1f} ({verify_1_cpu:.1f})"),
        ("inclusion proof from storage, median / p99 ms", "{proof_ms:.2f} / {proof_p99_ms:.2f}"),
        ("inclusion proof check (offline), median µs", "{check_us:.0f}"),
        (
            "search, first page of 100: one patient / one principal, ms",
            "{search_patient_ms:.1f} / {search_principal_ms:.1f}",
        ),
        ("bursts of 1,000 appended to a copy: /s (CPU µs/event)", "{burst_rate:,.0f} ({burst_cpu:.0f})"),
    ]
    for label, fmt in lines:
        table.add_row(label, *(fmt.format(**row) for row in figures.values()))
    console.print(table)


if __name__ == "__main__":
    main()
