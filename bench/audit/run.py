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
import random
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

from pacsguard.audit import AuditLog, AuditOptions, merkle, verify  # noqa: E402
from pacsguard.audit.proofs import inclusion  # noqa: E402
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
for _name, _col in [
    ("patient", "patient_id"),
    ("principal", "principal_id"),
    ("study", "study_uid"),
    ("ip", "ip"),
    ("type", "type"),
]:
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


Row = tuple[str, str, float, float, float, float]


def measure_appends(backend: str, url: Callable[[str], str], sizes: dict[str, int]) -> list[Row]:
    results = []
    engine = make_engine(url("single"))
    migrate(engine)
    single = appends_single(engine, sizes["single"])
    base_single = baseline_single(engine, sizes["single"])
    engine.dispose()
    mode = f"1 caller, durable ({sizes['single']:,} events)"
    results.append((mode, backend, single, base_single, CPU_US[-2], CPU_US[-1]))
    engine = make_engine(url("many"))
    migrate(engine)
    total = 50 * sizes["per_caller"]
    many = appends_concurrent(engine, 50, sizes["per_caller"])
    base_many = baseline_batched(engine, total)
    engine.dispose()
    results.append((f"50 callers, durable ({total:,} events)", backend, many, base_many, CPU_US[-2], CPU_US[-1]))
    engine = make_engine(url("async"))
    migrate(engine)
    many_async = appends_async(engine, 50, sizes["per_caller"])
    engine.dispose()
    mode = f"50 async callers, one loop ({total:,} events)"
    results.append((mode, backend, many_async, base_many, CPU_US[-1], CPU_US[-2]))
    return results


def fill(engine: Engine, n: int) -> tuple[Ed25519PrivateKey, bytes]:
    """Append ``n`` events (pipelined by one caller, committed in groups)."""
    key = Ed25519PrivateKey.generate()
    with AuditLog(engine, signing_key=key, options=AuditOptions(head_every_events=10_000, queue_limit=20_000)) as log:
        window = []
        for i in range(n):
            window.append(log.append(event(i)))
            if len(window) >= 10_000:
                for r in window:
                    r.result()
                window.clear()
                console.print(f"  filled {i + 1:,}/{n:,}", end="\r")
        for r in window:
            r.result()
        log.sign_head()
        root = log.root()
    console.print()
    return key, root


def measure_scale(directory: Path, n: int, proofs: int) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{directory / 'scale.db'}")
    migrate(engine)
    t0 = time.perf_counter()
    key, root = fill(engine, n)
    fill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = verify(engine, key.public_key(), workers=2)
    verify_s = time.perf_counter() - t0
    assert report.ok, report.findings
    t0 = time.perf_counter()
    report = verify(engine, key.public_key(), workers=1)
    verify_1_s = time.perf_counter() - t0
    assert report.ok, report.findings
    assert report.size == n
    assert report.root == root
    rng = random.Random(7)
    times, check_times = [], []
    for seq in rng.sample(range(n), proofs):
        t0 = time.perf_counter()
        proof = inclusion(engine, seq)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert merkle.verify_inclusion(proof.leaf_hash, seq, proof.size, proof.path, proof.root)
        check_times.append(time.perf_counter() - t0)
    engine.dispose()
    return {
        "fill_s": fill_s,
        "verify_s": verify_s,
        "verify_1_s": verify_1_s,
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
    table = RichTable(title="durable appends per second (and client-process CPU µs per event)")
    for column in ["mode", "backend", "audit log (/s)", "plain INSERT (/s)", "log / plain", "CPU µs log · plain"]:
        table.add_column(column, justify="right" if "/" in column or "µs" in column else "left")
    for mode, backend, ours, base, ours_cpu, base_cpu in rows:
        table.add_row(
            mode, backend, f"{ours:,.0f}", f"{base:,.0f}", f"{ours / base:.2f}", f"{ours_cpu:.0f} · {base_cpu:.0f}"
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (100,000 events at scale)")
    parser.add_argument("--scale", type=int, default=None, help="events for the verify/proof measurement")
    parser.add_argument("--scale-only", action="store_true", help="skip the append measurements")
    args = parser.parse_args()
    sizes = {"single": 300, "per_caller": 200} if args.quick else {"single": 1000, "per_caller": 600}
    scale = args.scale or (100_000 if args.quick else 1_000_000)
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pacsguard-bench-")))
        if not args.scale_only:
            print_appends(stack, directory, sizes)
        console.print(f"[bold]scale[/]: {scale:,} events on SQLite")
        figures = measure_scale(directory, scale, 200)
        table = RichTable(title=f"{scale:,} events")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("fill (pipelined appends)", f"{figures['fill_s']:.1f} s ({scale / figures['fill_s']:,.0f}/s)")
        table.add_row("verify, 2 worker processes (every leaf, tree, nodes, heads)", f"{figures['verify_s']:.1f} s")
        table.add_row("verify, 1 process", f"{figures['verify_1_s']:.1f} s")
        table.add_row("inclusion proof from storage, median", f"{figures['proof_ms']:.2f} ms")
        table.add_row("inclusion proof from storage, p99", f"{figures['proof_p99_ms']:.2f} ms")
        table.add_row("inclusion proof check (offline), median", f"{figures['check_us']:.0f} µs")
        console.print(table)


if __name__ == "__main__":
    main()
