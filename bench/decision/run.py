"""Decision point benchmark: pacsguard vs Casbin vs Cedar on the same policy.

3 zones, 20 roles per zone (chains of junior roles), 50 / 500 / 5,000 rules, 10,000 users.
Prints one table: median and p99 per decision (after a first, untimed-for-the-median pass
whose median is shown too: pacsguard memoises per-rule condition filtering, the peers keep
no state), decisions per second, the time to filter 1,000 studies in one batch, and how
many answers all three engines share.

    .venv/bin/python bench/decision/run.py [--sizes 50,500,5000] [--budget 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from engines import ENGINES, tempdir
from rich.console import Console
from rich.table import Table
from workload import make


def per_decision(one: Callable[[Any], bool], requests: Sequence[Any], budget: float) -> tuple[list[float], list[bool]]:
    """Time each decision alone (ns -> µs) until all requests are done or the budget is spent."""
    times: list[float] = []
    answers: list[bool] = []
    deadline = time.perf_counter() + budget
    for request in requests:
        start = time.perf_counter_ns()
        answers.append(one(request))
        times.append((time.perf_counter_ns() - start) / 1000)
        if time.perf_counter() > deadline and len(times) >= 30:
            break
    return times, answers


def batch(
    many: Callable[[Sequence[Any]], list[bool]], requests: Sequence[Any], budget: float, estimate_us: float
) -> tuple[str, list[bool]]:
    """Median wall time (ms) of filtering the whole batch, repeated within the budget. When one
    run would blow the budget (estimated from the per-decision median), time a prefix
    and scale up; such figures are marked with a tilde."""
    fits = int(budget * 1e6 / max(estimate_us, 1.0))
    part = requests if fits >= len(requests) else requests[: max(20, fits // 2)]
    runs: list[float] = []
    answers: list[bool] = []
    deadline = time.perf_counter() + budget
    while not runs or (time.perf_counter() < deadline and len(runs) < 7):
        start = time.perf_counter()
        answers = many(part)
        runs.append((time.perf_counter() - start) * 1000)
    scale = len(requests) / len(part)
    return ("" if scale == 1 else "~") + f"{statistics.median(runs) * scale:,.2f}", answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,500,5000")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per engine, size and measurement")
    args = parser.parse_args()
    console = Console(width=130)
    table = Table(title="Decision point: pacsguard vs Casbin vs Cedar (3 zones, 20 roles/zone, 10,000 users)")
    columns = (
        "rules",
        "engine",
        "build s",
        "1st pass median µs",
        "median µs",
        "p99 µs",
        "decisions/s",
        "filter 1,000 ms",
        "n",
    )
    for column in columns:
        table.add_column(column, justify="right" if column not in ("engine",) else "left")
    started = time.perf_counter()
    for size in (int(s) for s in args.sizes.split(",")):
        work = make(size)
        answers: dict[str, list[bool]] = {}
        batches: dict[str, list[bool]] = {}
        for engine_type in ENGINES:
            with tempdir() as tmp:
                t0 = time.perf_counter()
                engine = engine_type(work, Path(tmp))
                built = time.perf_counter() - t0
                requests = engine.prepare(work.asks)
                filter_requests = engine.prepare(work.batch)
                cold, _ = per_decision(engine.one, requests, args.budget)  # first pass: cold caches
                times, answers[engine.name] = per_decision(engine.one, requests[: len(cold)], args.budget)
                times.sort()
                batch_ms, batches[engine.name] = batch(
                    engine.many, filter_requests, args.budget, statistics.median(times)
                )
            mean = statistics.fmean(times)
            table.add_row(
                f"{size:,}",
                engine.name,
                f"{built:.2f}",
                f"{statistics.median(cold):,.1f}",
                f"{statistics.median(times):,.1f}",
                f"{times[min(len(times) - 1, int(len(times) * 0.99))]:,.1f}",
                f"{1e6 / mean:,.0f}",
                batch_ms,
                f"{len(times):,}",
            )
        common = min(len(a) for a in answers.values())
        same = sum(1 for i in range(common) if len({a[i] for a in answers.values()}) == 1)
        batch_common = min(len(b) for b in batches.values())
        same_batch = sum(1 for i in range(batch_common) if len({b[i] for b in batches.values()}) == 1)
        permits = sum(answers["pacsguard"][:common])
        table.add_row(
            "", "[dim]agree[/]", "", "", "", "", "", f"[dim]{same_batch}/{batch_common}[/]", f"[dim]{same}/{common}[/]"
        )
        table.add_section()
        console.print(f"{size} rules: {permits}/{common} sampled requests permitted", style="dim")
    console.print(table)
    console.print(f"total {time.perf_counter() - started:.0f} s", style="dim")


if __name__ == "__main__":
    main()
