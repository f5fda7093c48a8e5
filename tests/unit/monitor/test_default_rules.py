"""One test per default rule, each checking both sides of its threshold."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pacsguard.clock import FakeClock
from pacsguard.monitor import Engine, Response, Severity, load_rules
from tests.unit.monitor.conftest import Feed, fired


def test_failed_logins_account_8_do_not_alert_9_do(feed: Feed) -> None:
    quiet = feed.spaced([{"ip": f"203.0.113.{i}"} for i in range(8)], "login.failure", every=30)
    assert fired(quiet, "auth.failed-logins-account") == []
    feed.clock.advance(seconds=30)
    alerts = fired(feed("login.failure", ip="203.0.113.8"), "auth.failed-logins-account")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.subject == "actor.principal_id=alice"
    assert alert.severity is Severity.HIGH
    assert alert.evidence == tuple(range(1, 10))
    assert alert.response is Response.SUGGEST
    assert alert.actions == ("lock_account",)
    assert alert.time_to_alert == timedelta(seconds=8 * 30)


def test_failed_logins_account_outside_10_minutes_do_not_add_up(feed: Feed) -> None:
    alerts = feed.many(9, "login.failure", every=76)  # 8 gaps of 76 s = 10 min 8 s
    assert fired(alerts, "auth.failed-logins-account") == []


def test_failed_logins_ip_20_do_not_alert_21_do(feed: Feed) -> None:
    quiet = [a for i in range(20) for a in feed("login.failure", user=f"user{i}", ip="198.51.100.7")]
    assert fired(quiet, "auth.failed-logins-ip") == []
    alerts = fired(feed("login.failure", user="user20", ip="198.51.100.7"), "auth.failed-logins-ip")
    assert [a.subject for a in alerts] == ["actor.ip=198.51.100.7"]
    assert alerts[0].actions == ("block_ip",)


def test_success_after_4_failures_is_quiet(feed: Feed) -> None:
    feed.many(4, "login.failure")
    feed.clock.advance(minutes=1)
    assert fired(feed("login.success"), "auth.success-after-failures") == []


def test_success_after_a_burst_of_5_failures_is_critical_and_contained(feed: Feed) -> None:
    feed.many(5, "login.failure")
    feed.clock.advance(minutes=1)
    (alert,) = fired(feed("login.success"), "auth.success-after-failures")
    assert alert.severity is Severity.CRITICAL
    assert alert.response is Response.CONTAIN
    assert "lock_account" in alert.actions
    assert alert.evidence == (1, 2, 3, 4, 5, 6)


def test_success_more_than_10_minutes_after_the_burst_is_quiet(feed: Feed) -> None:
    feed.many(5, "login.failure")
    feed.clock.advance(minutes=11)
    assert fired(feed("login.success"), "auth.success-after-failures") == []


def _settled(feed: Feed, **kwargs: str) -> None:
    """A user with a day of history from Germany on workstation ws-1."""
    feed("login.success", **kwargs)
    feed.clock.advance(days=2)


def test_new_country_alerts_a_known_country_does_not(feed: Feed) -> None:
    _settled(feed)
    assert fired(feed("login.success", country="DE"), "auth.new-country") == []
    (alert,) = fired(feed("login.success", country="BR"), "auth.new-country")
    assert alert.facts["value"] == "BR"
    assert alert.facts["known"] == ["DE"]


def test_new_country_is_quiet_while_the_user_is_still_learning(feed: Feed) -> None:
    feed("login.success", country="DE")
    feed.clock.advance(hours=2)
    assert fired(feed("login.success", country="BR"), "auth.new-country") == []


def test_new_device_alerts_a_known_device_does_not(feed: Feed) -> None:
    _settled(feed)
    assert fired(feed("login.success", device="ws-1"), "auth.new-device") == []
    (alert,) = fired(feed("login.success", device="laptop-9"), "auth.new-device")
    assert alert.subject == "actor.principal_id=alice"


def test_admin_changes_alert_at_once_every_time(feed: Feed) -> None:
    kinds = ["admin.role.grant", "admin.role.revoke", "principal.created", "delegation.created"]
    alerts = [a for kind in kinds for a in feed(kind, user="admin1")]
    assert [a.rule_id for a in alerts] == ["admin.change"] * 4
    assert fired(feed("admin.role.grant", user="admin1"), "admin.change")  # no dedup
    assert fired(feed("study.query", detail={"count": 3}), "admin.change") == []


def test_admin_change_without_an_actor_still_alerts(feed: Feed) -> None:
    (alert,) = feed("principal.created", user=None)
    assert alert.subject == "actor.principal_id=-"
    assert feed.engine.stats().missing == {"admin.change": 1}


def test_export_15_studies_do_not_alert_16_do(feed: Feed) -> None:
    quiet = feed.spaced([{"study": f"1.2.{i}"} for i in range(15)], "study.export", every=60)
    assert fired(quiet, "data.export-spike") == []
    (alert,) = fired(feed("study.export", study="1.2.15"), "data.export-spike")
    assert alert.facts["distinct"] == 16
    assert alert.severity is Severity.HIGH


def test_downloads_count_as_exports_plain_reads_do_not(feed: Feed) -> None:
    for i in range(30):
        feed("study.read", study=f"1.3.{i}")
    assert feed.engine.stats().alerts == 0
    alerts = [a for i in range(16) for a in feed("study.read", study=f"1.4.{i}", detail={"download": True})]
    assert len(fired(alerts, "data.export-spike")) == 1


def test_export_spike_counts_distinct_studies_and_spares_admins(feed: Feed) -> None:
    same = [a for _ in range(20) for a in feed("study.export", study="1.2.3")]
    admin = [a for i in range(20) for a in feed("study.export", user="root", roles=("admin",), study=f"1.5.{i}")]
    assert fired(same + admin, "data.export-spike") == []


def _weekly_exporter(feed: Feed) -> None:
    for _ in range(4):
        feed("study.export", study="1.9.1")
        feed.clock.advance(days=7)


def test_export_far_above_own_baseline_7_quiet_8_alert(feed: Feed) -> None:
    _weekly_exporter(feed)
    quiet = feed.spaced([{"study": f"1.8.{i}"} for i in range(7)], "study.export", every=120)
    assert fired(quiet, "data.export-baseline") == []
    (alert,) = fired(feed("study.export", study="1.8.7"), "data.export-baseline")
    assert alert.facts["count"] == 8
    assert alert.facts["expected"] < 0.05


def test_baseline_needs_a_week_of_history(feed: Feed) -> None:
    feed("study.export", study="1.9.1")
    feed.clock.advance(days=3)
    alerts = [a for i in range(10) for a in feed("study.export", study=f"1.8.{i}")]
    assert fired(alerts, "data.export-baseline") == []


def test_export_spike_after_a_new_device_login_is_urgent(feed: Feed) -> None:
    _settled(feed)
    (device_alert,) = fired(feed("login.success", device="stolen-laptop"), "auth.new-device")
    feed.clock.advance(minutes=20)
    alerts = [a for i in range(16) for a in feed("study.export", study=f"1.2.{i}")]
    (alert,) = fired(alerts, "data.export-spike")
    assert alert.severity is Severity.URGENT
    assert alert.escalated_by == "data.export-after-new-device"
    assert alert.escalated_from == "auth.new-device"
    assert alert.response is Response.CONTAIN
    assert device_alert.evidence[0] in alert.evidence


def test_export_spike_long_after_a_new_device_stays_high(feed: Feed) -> None:
    _settled(feed)
    feed("login.success", device="stolen-laptop")
    feed.clock.advance(hours=3)
    alerts = [a for i in range(16) for a in feed("study.export", study=f"1.2.{i}")]
    (alert,) = fired(alerts, "data.export-spike")
    assert alert.severity is Severity.HIGH
    assert alert.escalated_by is None


def test_share_spree_10_quiet_11_alert(feed: Feed) -> None:
    quiet = feed.many(10, "share.created", every=60, detail={"recipient": "gp@example.org"})
    assert fired(quiet, "share.spree") == []
    assert len(fired(feed("share.created", detail={"recipient": "gp@example.org"}), "share.spree")) == 1


def test_unique_recipients_5_quiet_6_alert(feed: Feed) -> None:
    quiet = [a for i in range(5) for a in feed("share.created", detail={"recipient": f"r{i}@example.org"})]
    quiet += [a for _ in range(3) for a in feed("share.created", detail={"recipient": "r0@example.org"})]
    assert fired(quiet, "share.recipients-rise") == []
    (alert,) = fired(feed("share.created", detail={"recipient": "r5@example.org"}), "share.recipients-rise")
    assert alert.facts["distinct"] == 6


def test_break_glass_always_alerts(feed: Feed) -> None:
    first = fired(feed("break_glass.granted"), "breakglass.used")
    feed.clock.advance(days=3)
    second = fired(feed("break_glass.granted"), "breakglass.used")
    assert len(first) == len(second) == 1


def test_repeated_break_glass_2_quiet_3_alert(feed: Feed) -> None:
    quiet = feed.many(2, "break_glass.granted", every=3600)
    assert fired(quiet, "breakglass.repeated") == []
    feed.clock.advance(hours=5)
    assert len(fired(feed("break_glass.granted"), "breakglass.repeated")) == 1


def test_denied_burst_5_studies_quiet_6_alert(feed: Feed) -> None:
    quiet = [a for i in range(5) for a in feed("access.denied", study=f"1.6.{i}")]
    quiet += [a for _ in range(10) for a in feed("access.denied", study="1.6.0")]  # retries of one study
    assert fired(quiet, "access.denied-burst") == []
    assert len(fired(feed("access.denied", study="1.6.5"), "access.denied-burst")) == 1


def test_off_hours_bulk_query_500_quiet_501_alert(feed: Feed, clock: FakeClock) -> None:
    clock.advance(hours=13)  # Monday 22:00 UTC
    quiet = feed("study.query", detail={"count": 300}) + feed("study.query", detail={"count": 200})
    assert fired(quiet, "query.off-hours-bulk") == []
    (alert,) = fired(feed("study.query", detail={"count": 1}), "query.off-hours-bulk")
    assert alert.facts["sum"] == 501


def test_bulk_query_in_working_hours_is_quiet(feed: Feed, clock: FakeClock) -> None:
    clock.advance(hours=1)  # Monday 10:00 UTC
    assert fired(feed("study.query", detail={"count": 5000}), "query.off-hours-bulk") == []
    clock.advance(days=5)  # Saturday 10:00: off hours
    assert len(fired(feed("study.query", detail={"count": 5000}), "query.off-hours-bulk")) == 1


def test_working_hours_may_run_over_midnight(tmp_path: Path, clock: FakeClock) -> None:
    (tmp_path / "site.yaml").write_text(
        "overrides:\n  - id: query.off-hours-bulk\n"
        "    working_hours: {days: [mon, tue, wed, thu, fri], start: '19:00', end: '07:00'}\n"
    )
    feed = Feed(Engine(load_rules(tmp_path)), clock)
    clock.advance(hours=14)  # Monday 23:00: a night-shift site works now
    assert fired(feed("study.query", detail={"count": 5000}), "query.off-hours-bulk") == []
    clock.advance(hours=12)  # Tuesday 11:00: off hours for this site
    assert len(fired(feed("study.query", detail={"count": 5000}), "query.off-hours-bulk")) == 1
