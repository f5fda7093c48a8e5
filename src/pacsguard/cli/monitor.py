"""``pacsguard monitor check`` and ``pacsguard monitor replay``: validate the detection
rules of a site, and backtest them over a JSON Lines file of events."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from pacsguard.cli._common import console, err_console, load_settings, site_option
from pacsguard.clock import utc
from pacsguard.errors import MonitorError
from pacsguard.monitor import Alert, Engine, JsonlEventSource, RuleSet, load_rules, site_geo


@click.group()
def monitor() -> None:
    """Detection rules: validate them, and replay them over past events."""


def _site_rules(site: Path | None) -> RuleSet:
    settings = load_settings(site)
    return load_rules(settings.site / "rules")


@monitor.command()
@site_option
def check(site: Path | None) -> None:
    """Validate the default rules with the site's overrides in rules/*.yaml."""
    rules = _site_rules(site)
    geo = site_geo(rules.networks, rules.geoip)
    table = _table("detection rules in force", "rule", "kind", "severity", "response", "from")
    for rule in rules.rules:
        table.add_row(rule.id, rule.kind, rule.severity.value, rule.response.value, rules.origin.get(rule.id, ""))
    console.print(table)
    if rules.disabled:
        console.print(f"disabled by the site: {', '.join(rules.disabled)}")
    where = f"; GeoIP {rules.geoip}" if geo.database is not None else "; no GeoIP file (countries only from events)"
    console.print(f"{len(rules.rules)} rules valid, {len(rules.networks)} site networks{where}")


def _table(title: str, *columns: str) -> Table:
    """A table whose cells fold rather than cut, so ids and subjects stay whole on narrow terminals."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time such as 2026-01-05T09:00:00Z") from exc


@monitor.command()
@site_option
@click.option(
    "--events",
    "events_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON Lines file of audit events, one per line, in seq order.",
)
@click.option("--since", callback=_when, help="Only events at or after this time (ISO 8601).")
@click.option("--until", callback=_when, help="Only events before this time (ISO 8601).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the alerts here as JSON Lines.")
def replay(
    site: Path | None, events_file: Path, since: datetime | None, until: datetime | None, output: Path | None
) -> None:
    """Run the site's rules over past events and print what would have fired."""
    rules = _site_rules(site)
    engine = Engine(rules, geo=site_geo(rules.networks, rules.geoip))
    source = JsonlEventSource(events_file, since, until)
    with err_console.status("replaying events…"):
        alerts = list(engine.run(source.events()))
    if output is not None:
        _write(output, alerts)
    _report(alerts, engine, source)


def _write(output: Path, alerts: list[Alert]) -> None:
    try:
        with output.open("w", encoding="utf-8") as out:
            for alert in alerts:
                out.write(json.dumps(alert.to_json(), sort_keys=True) + "\n")
    except OSError as exc:
        raise MonitorError(f"{output}: cannot write alerts: {exc.strerror or exc}") from exc


def _report(alerts: list[Alert], engine: Engine, source: JsonlEventSource) -> None:
    table = _table("alerts that would have fired", "time", "rule", "severity", "subject", "evidence")
    for alert in alerts:
        table.add_row(
            alert.triggered_at.isoformat(), alert.rule_id, alert.severity.value, alert.subject, str(len(alert.evidence))
        )
    console.print(table)
    for problem in source.problems:
        err_console.print(f"skipped: {problem}", markup=False)
    stats = engine.stats()
    skipped = source.skipped + stats.malformed + stats.unsequenced + stats.duplicates + sum(stats.missing.values())
    per_rule = ", ".join(f"{rid} {n}" for rid, n in sorted(Counter(a.rule_id for a in alerts).items()))
    console.print(f"{stats.processed} events, {skipped} skipped, {len(alerts)} alerts ({per_rule or 'none'})")
