"""``pacsguard monitor check``/``replay``/``status``/``run``: validate the detection rules
of a site, backtest them over a JSON Lines file of events, show the live monitor's state,
and run it."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from pacsguard.audit.reader import LogReader
from pacsguard.cli._common import console, err_console, load_settings, site_option
from pacsguard.cli._directory import open_site_for_command, record_log_use
from pacsguard.clock import utc
from pacsguard.domain.events import AuditEvent
from pacsguard.errors import MonitorError
from pacsguard.gateway.shares import ShareStore
from pacsguard.monitor import Alert, Engine, JsonlEventSource, RuleSet, load_rules, site_geo
from pacsguard.monitor.containment import Containment, IpBlocks
from pacsguard.monitor.incidents import IncidentState
from pacsguard.monitor.leader import leadership_for, someone_leads
from pacsguard.monitor.notify import ChannelHealth, channel_health
from pacsguard.monitor.notify_config import load_notifiers
from pacsguard.monitor.store import MonitorStore
from pacsguard.monitor.wiring import Monitor, open_monitor


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
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON Lines file of audit events in seq order (default: the site's own audit log).",
)
@click.option("--since", callback=_when, help="Only events at or after this time (ISO 8601).")
@click.option("--until", callback=_when, help="Only events before this time (ISO 8601).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the alerts here as JSON Lines: rule, severity, subject (user, IP), first and triggering seq and time.",
)
def replay(
    site: Path | None, events_file: Path | None, since: datetime | None, until: datetime | None, output: Path | None
) -> None:
    """Run the site's rules over past events (the site's audit log, or a JSON Lines file)
    and print what would have fired. Nothing is stored, notified or contained."""
    rules = _site_rules(site)
    engine = Engine(rules, geo=site_geo(rules.networks, rules.geoip))
    source: JsonlEventSource | None = None
    if events_file is not None:
        source = JsonlEventSource(events_file, since, until)
        events = source.events()
    else:
        events = _site_events(site, since, until)
    with err_console.status("replaying events…"):
        alerts = list(engine.run(events))
    if output is not None:
        _write(output, alerts)
    _report(alerts, engine, source)


def _site_events(site: Path | None, since: datetime | None, until: datetime | None) -> Iterator[AuditEvent]:
    """The site's logged events in the range; reading them is recorded first (audit.log.used)."""
    opened = open_site_for_command(load_settings(site))
    window = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
    record_log_use(opened, purpose="monitor replay", **window)
    return LogReader(opened.engine).iter_events(since, until)


def _write(output: Path, alerts: list[Alert]) -> None:
    try:
        with output.open("w", encoding="utf-8") as out:
            for alert in alerts:
                out.write(json.dumps(alert.replay_record(), sort_keys=True) + "\n")
    except OSError as exc:
        raise MonitorError(f"{output}: cannot write alerts: {exc.strerror or exc}") from exc


def _report(alerts: list[Alert], engine: Engine, source: JsonlEventSource | None) -> None:
    table = _table("alerts that would have fired", "time", "rule", "severity", "subject", "evidence")
    for alert in alerts:
        table.add_row(
            alert.triggered_at.isoformat(), alert.rule_id, alert.severity.value, alert.subject, str(len(alert.evidence))
        )
    console.print(table)
    for problem in source.problems if source is not None else ():
        err_console.print(f"skipped: {problem}", markup=False)
    stats = engine.stats()
    skipped = (
        (source.skipped if source is not None else 0)
        + stats.malformed
        + stats.unsequenced
        + stats.duplicates
        + sum(stats.missing.values())
    )
    per_rule = ", ".join(f"{rid} {n}" for rid, n in sorted(Counter(a.rule_id for a in alerts).items()))
    console.print(f"{stats.processed} events, {skipped} skipped, {len(alerts)} alerts ({per_rule or 'none'})")


@monitor.command()
@site_option
def status(site: Path | None) -> None:
    """Show the rules in force, the cursor and its lag behind the audit log, alerts,
    open incidents and the health of each notification channel."""
    opened = open_site_for_command(load_settings(site))
    rules = _site_rules(opened.settings.site)
    store = MonitorStore(opened.engine)
    checkpoint = store.checkpoint()
    cursor = checkpoint.last_seq if checkpoint is not None else -1
    lag = opened.audit.size - (cursor + 1)
    kinds = Counter(rule.kind for rule in rules.rules)
    console.print(f"rules: {len(rules.rules)} in force ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    when = checkpoint.updated_at.isoformat(timespec="seconds") if checkpoint is not None else "never"
    console.print(f"cursor: seq {cursor}, {lag} events behind the audit log (last commit {when})")
    running = "a monitor instance leads" if someone_leads(opened.engine) else "no monitor is running on this database"
    console.print(f"leader: {running}")
    incidents = [i for i in store.incidents() if i.state is not IncidentState.RESOLVED]
    states = store.alert_states()
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    console.print(
        f"alerts: {store.alert_count()} stored ({by_state or 'none'}); incidents: {len(incidents)} not resolved"
    )
    active = Containment(opened.directory, IpBlocks(opened.engine), opened.audit, opened.clock).active()
    console.print(f"containments in force: {len(active)}")
    for c in active:
        console.print(f"  {c.action} {c.target} (by {c.ordered_by}, since {c.since.isoformat(timespec='seconds')})")
    _channels(opened.settings.site, rules, store)


def _channels(site: Path, rules: RuleSet, store: MonitorStore) -> None:
    configured = {"dashboard", *load_notifiers(site)}
    columns = ("channel", "configured", "pending", "retrying", "delivered", "failed", "failed attempts")
    table = _table("notification channels", *columns)
    health = {h.channel: h for h in channel_health(store)}
    named = {channel for rule in rules.rules for channel in rule.channels}
    troubles = []
    for channel in sorted(configured | named | set(health)):
        h = health.get(channel, ChannelHealth(channel, 0, 0, 0, None))
        yes = "yes" if channel in configured else "NO"
        counts = (h.pending, h.retrying, h.delivered, h.failed, h.failed_attempts)
        table.add_row(channel, yes, *(str(n) for n in counts))
        if h.last_error:
            retry = f"; next retry {h.next_retry.isoformat(timespec='seconds')}" if h.next_retry else ""
            troubles.append(f"{channel}: last error: {h.last_error}{retry}")
    console.print(table)
    for line in troubles:
        console.print(line, markup=False)


@monitor.command()
@site_option
@click.option("--once", is_flag=True, help="Process everything logged so far, deliver what is due, then stop.")
def run(site: Path | None, once: bool) -> None:
    """Tail the audit log live: detect, store alerts and incidents, contain, notify (Ctrl-C stops).

    Several instances may run on one database: one leads, the others stand by."""
    opened = open_site_for_command(load_settings(site))
    settings = opened.settings
    live = open_monitor(
        settings.site / "rules",
        opened.engine,
        opened.audit,
        opened.directory,
        opened.clock,
        notifiers=load_notifiers(settings.site),
        shares=ShareStore(opened.engine, opened.clock),
        leader=leadership_for(opened.engine),
    )
    if once:
        _once(live)
        return
    live.start()
    try:
        with console.status(_line(live)) as line:
            while True:
                time.sleep(0.5)
                line.update(_line(live))
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        live.stop()
    console.print(_line(live))


def _once(live: Monitor) -> None:
    if not live.service.lead():
        console.print("another monitor instance is leading on this database: it does the work; nothing done")
        return
    try:
        while live.service.step():
            pass
        live.dispatcher.run_due()
    finally:
        live.stop()
    console.print(_line(live))


def _line(live: Monitor) -> str:
    store = live.service.store
    stats = live.service.engine.stats()
    leader = live.service.leader
    standby = "standing by (another instance leads) · " if leader is not None and not leader.held else ""
    return (
        f"monitor: {standby}seq {live.service.cursor} · {stats.processed} events · {store.alert_count()} alerts · "
        f"{len(store.incidents(state=IncidentState.OPEN))} open incidents"
    )
