"""Replay over a JSON Lines file runs the live code: same alerts; and the CLI around it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain.events import AuditEvent, DecisionRef
from pacsguard.monitor import Engine, JsonlEventSource, Rule, event_from_json, event_to_json
from tests.unit.monitor.conftest import attack_history


def _unwrapped(text: str) -> str:
    """Console output without any whitespace: rich breaks lines at the terminal width,
    between words or inside a long one, so compare with ``_unwrapped(expected)``."""
    return "".join(text.split())


def _write(path: Path, events: list[AuditEvent], *extra: str) -> Path:
    lines = [json.dumps(event_to_json(e)) for e in events]
    path.write_text("\n".join([*lines[:3], *extra, *lines[3:]]) + "\n")
    return path


def test_replay_gives_the_same_alerts_as_live_feeding(
    default_rules: tuple[Rule, ...], clock: FakeClock, tmp_path: Path
) -> None:
    feed = attack_history(default_rules, clock)
    engine = Engine(default_rules)
    live = [a for e in feed.sent for a in engine.process(e)]
    source = JsonlEventSource(_write(tmp_path / "events.jsonl", feed.sent))
    replayed = list(Engine(default_rules).run(source.events()))
    assert replayed == live
    assert {a.rule_id for a in live} >= {"auth.failed-logins-account", "data.export-spike", "breakglass.used"}


def test_events_round_trip_through_json() -> None:
    event = AuditEvent(
        type="study.read",
        occurred_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
        decision=DecisionRef("permit", rule_ids=("r1",)),
        detail={"download": True},
        seq=7,
    )
    assert event_from_json(json.loads(json.dumps(event_to_json(event)))) == event


def test_bad_lines_are_counted_and_named(tmp_path: Path, clock: FakeClock, default_rules: tuple[Rule, ...]) -> None:
    feed = attack_history(default_rules, clock)
    path = _write(tmp_path / "e.jsonl", feed.sent, "{not json", '{"type": "x"}', '{"type": "x", "occurred_at": "soon"}')
    source = JsonlEventSource(path)
    assert len(list(source.events())) == len(feed.sent)
    assert source.skipped == 3
    assert source.problems[0].startswith(f"{path}:4: not an event")


def test_since_and_until_select_a_stretch(tmp_path: Path, clock: FakeClock, default_rules: tuple[Rule, ...]) -> None:
    feed = attack_history(default_rules, clock)
    path = _write(tmp_path / "e.jsonl", feed.sent)
    since = datetime(2026, 1, 7, tzinfo=UTC)
    until = datetime(2026, 1, 8, tzinfo=UTC)
    events = list(JsonlEventSource(path, since, until).events())
    assert events
    assert all(since <= e.occurred_at < until for e in events)
    assert len(events) == len(feed.sent) - 2


@pytest.fixture
def site_with_events(
    make_site: Callable[..., Path], default_rules: tuple[Rule, ...], clock: FakeClock
) -> tuple[Path, Path]:
    site = make_site(**{"rules__site.yaml": "overrides:\n  - id: breakglass.used\n    enabled: false\n"})
    feed = attack_history(default_rules, clock)
    return site, _write(site / "events.jsonl", feed.sent)


def test_cli_replay_prints_and_writes_the_alerts(
    site_with_events: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site, events = site_with_events
    out = site / "alerts.jsonl"
    assert main(["monitor", "replay", "--site", str(site), "--events", str(events), "--output", str(out)]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    rules = {a["rule_id"] for a in written}
    assert "auth.failed-logins-account" in rules
    assert "breakglass.used" not in rules  # disabled by the site
    assert _unwrapped(f"{len(written)} alerts") in _unwrapped(capsys.readouterr().out)


def test_cli_replay_since_until(site_with_events: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    site, events = site_with_events
    argv = ["monitor", "replay", "--site", str(site), "--events", str(events)]
    assert main([*argv, "--since", "2026-01-08T00:00:00+00:00"]) == 0
    assert _unwrapped("1 events, 0 skipped, 0 alerts") in _unwrapped(capsys.readouterr().out)
    assert main([*argv, "--until", "yesterday"]) == 2
    assert _unwrapped("not an ISO 8601 time") in _unwrapped(capsys.readouterr().err)


def test_cli_replay_missing_events_file(make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site()
    assert main(["monitor", "replay", "--site", str(site), "--events", str(site / "nope.jsonl")]) == 1
    assert _unwrapped("nope.jsonl: cannot read events") in _unwrapped(capsys.readouterr().err)


def test_cli_check_lists_rules_and_reports_errors(
    make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_site("good", **{"rules__site.yaml": "overrides:\n  - id: share.spree\n    more_than: 20\n"})
    assert main(["monitor", "check", "--site", str(good)]) == 0
    assert _unwrapped("15 rules valid") in _unwrapped(capsys.readouterr().out)
    bad = make_site("bad", **{"rules__site.yaml": "overrides:\n  - id: share.spree\n    window: -1h\n"})
    assert main(["monitor", "check", "--site", str(bad)]) == 2
    err = _unwrapped(capsys.readouterr().err)
    assert _unwrapped("site.yaml:3") in err
    assert "share.spree" in err


def test_cli_check_bad_geoip_file(make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(**{"rules__geo.yaml": "geoip: geo.mmdb\n"})
    (site / "geo.mmdb").write_bytes(b"garbage")
    assert main(["monitor", "check", "--site", str(site)]) == 2
    assert _unwrapped("geo.mmdb: not a usable GeoIP") in _unwrapped(capsys.readouterr().err)
