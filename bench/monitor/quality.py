"""Detection quality: a generated month of hospital traffic with injected attacks.

Prints recall per attack type and false alerts per 1,000 user-days. An attack counts as
caught when an alert of one of its expected rules has one of the attack's events in its
evidence (and, where it matters, the expected severity). An alert is false when none of
its evidence is attack traffic. Break-glass use and directory changes are alerted every
time by design; those alerts are shown apart and not counted as false.

    .venv/bin/python bench/monitor/quality.py [--seed 7] [--users 300]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

from traffic import Attack, generate

from pacsguard.monitor import Alert, Engine, load_rules

BY_DESIGN = {"breakglass.used", "admin.change"}


def score(
    alerts: list[Alert], attacks: list[Attack], attack_seqs: dict[int, Attack]
) -> tuple[dict[str, list[int]], Counter[str], Counter[str]]:
    caught: set[int] = set()
    false: Counter[str] = Counter()
    by_design: Counter[str] = Counter()
    for alert in alerts:
        hit = {id(attack_seqs[s]) for s in alert.evidence if s in attack_seqs}
        for attack in attacks:
            right_severity = attack.severity is None or alert.severity.value == attack.severity
            if id(attack) in hit and alert.rule_id in attack.expects and right_severity:
                caught.add(id(attack))
        if not hit:
            (by_design if alert.rule_id in BY_DESIGN else false)[alert.rule_id] += 1
    recall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for attack in attacks:
        recall[attack.kind][1] += 1
        recall[attack.kind][0] += id(attack) in caught
    return recall, false, by_design


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--per-kind", type=int, default=4, help="injections of each attack type")
    args = parser.parse_args()
    start = time.perf_counter()
    traffic = generate(args.seed, args.users, args.per_kind)
    engine = Engine(load_rules())
    alerts = list(engine.run(traffic.events))
    recall, false, by_design = score(alerts, traffic.attacks, traffic.attack_seqs)
    elapsed = time.perf_counter() - start

    print(
        f"seed {args.seed}: {len(traffic.events):,} events, {args.users} users, {traffic.user_days:,} user-days, "
        f"{len(traffic.attacks)} attacks, {len(alerts)} alerts ({elapsed:.1f} s)"
    )
    print()
    print("| attack type | caught | recall |")
    print("| --- | ---: | ---: |")
    for kind, (hit, total) in recall.items():
        print(f"| {kind} | {hit}/{total} | {hit / total:.0%} |")
    total_false = sum(false.values())
    rate = total_false * 1000 / traffic.user_days
    print()
    print(
        f"false alerts: {total_false} = {rate:.2f} per 1,000 user-days (goal < 1)"
        + (f"  [{', '.join(f'{r} {n}' for r, n in false.most_common())}]" if false else "")
    )
    print(
        f"alerts by design on ordinary traffic (every break-glass, every directory change): "
        f"{', '.join(f'{r} {n}' for r, n in by_design.most_common()) or 'none'}"
    )
    stats = engine.stats()
    print(
        f"engine: {stats.processed:,} processed, {stats.suppressed} suppressed, {stats.escalated} escalated, "
        f"missing fields {sum(stats.missing.values())}, evictions {sum(stats.evictions.values())}"
    )


if __name__ == "__main__":
    main()
