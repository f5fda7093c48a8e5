"""Engine throughput and per-event processing latency, all default rules, one core.

Feeds the generated hospital month (with its attacks) through a fresh engine several
times and prints events per second; then times every ``Engine.process`` call and prints
the latency percentiles, for all events and for the events that raised an alert.

This is the engine's share of event-to-alert latency in live mode. The durable tail of
the audit log (commit -> monitor wake-up) is not built yet and is not included.

    .venv/bin/python bench/monitor/throughput.py [--runs 3] [--cpu 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from traffic import generate

from pacsguard.domain.events import AuditEvent
from pacsguard.monitor import Engine, load_rules


def throughput(events: list[AuditEvent]) -> tuple[float, int]:
    engine = Engine(load_rules())
    process = engine.process
    alerts = 0
    start = time.perf_counter()
    for event in events:
        if process(event):
            alerts += 1
    return len(events) / (time.perf_counter() - start), alerts


def latencies(events: list[AuditEvent]) -> tuple[list[int], list[int]]:
    engine = Engine(load_rules())
    process = engine.process
    clock = time.perf_counter_ns
    every: list[int] = []
    alerting: list[int] = []
    for event in events:
        start = clock()
        raised = process(event)
        took = clock() - start
        every.append(took)
        if raised:
            alerting.append(took)
    return every, alerting


def pct(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core (the engine is single-threaded anyway)")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    traffic = generate()
    events = traffic.events
    rules = load_rules().rules
    print(
        f"{len(events):,} events, {len(rules)} default rules, Python {platform.python_version()}, "
        f"one thread{'' if args.cpu is None else f' pinned to CPU {args.cpu}'}, load average {os.getloadavg()[0]:.2f}"
    )
    rates = []
    for run in range(args.runs):
        rate, alerts = throughput(events)
        rates.append(rate)
        print(f"run {run + 1}: {rate:,.0f} events/s ({alerts} events raised alerts)")
    every, alerting = latencies(events)
    print()
    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| throughput, median of {args.runs} runs | {statistics.median(rates):,.0f} events/s |")
    print(f"| throughput, min / max | {min(rates):,.0f} / {max(rates):,.0f} events/s |")
    print(
        f"| processing latency per event p50 / p99 / p99.9 | {pct(every, 50):.1f} / {pct(every, 99):.1f} / "
        f"{pct(every, 99.9):.1f} µs |"
    )
    print(f"| max | {max(every) / 1000:.0f} µs |")
    print(
        f"| latency of alert-raising events p50 / p99 (n={len(alerting)}) | {pct(alerting, 50):.1f} / "
        f"{pct(alerting, 99):.1f} µs |"
    )


if __name__ == "__main__":
    main()
