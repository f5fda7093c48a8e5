"""RFC 5424 records, RFC 5425 framing, the bounded spool and back-off (no network peer needed)."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from pacsguard.audit.syslog import BOM, SyslogForwarder, SyslogSettings, frame, syslog_record
from pacsguard.audit.syslog_spool import Spool
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent, Outcome
from pacsguard.errors import AuditTransportError
from tests.unit.audit.export_samples import sample

HEADER = re.compile(
    rb"^<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<proc>\S+) (?P<msgid>\S+) "
    rb"\[(?P<sdid>\S+) (?P<params>(?:[^\]\\]|\\.)*)\] "
)


def test_record_has_rfc5424_header_structured_data_and_dicom_body() -> None:
    record = syslog_record(sample("study.read", seq=42), hostname="pacs1", procid="77")
    m = HEADER.match(record)
    assert m is not None, record[:200]
    assert m["pri"] == b"85"  # facility 10, severity 5 (notice)
    assert m["ts"] == b"2026-11-23T12:00:42.123456Z"
    assert (m["host"], m["app"], m["proc"], m["msgid"]) == (b"pacs1", b"pacsguard", b"77", b"study.read")
    assert m["sdid"] == b"pacsguard@32473"
    assert m["params"] == b'seq="42" type="study.read"'
    body = record[m.end() :]
    assert body.startswith(BOM + b"<AuditMessage>")
    assert b'csd-code="110103"' in body
    assert b"\n" not in record


def test_failures_are_warnings_and_hostile_types_are_escaped() -> None:
    event = AuditEvent(type='bad "type"] with spaces and a very long name', occurred_at=sample("x").occurred_at,
                       outcome=Outcome.DENIED, seq=3)  # fmt: skip
    record = syslog_record(event, hostname="h o s t")
    m = HEADER.match(record)
    assert m is not None
    assert m["pri"] == b"84"
    assert m["host"] == b"h_o_s_t"
    assert len(m["msgid"]) == 32
    assert b'type="bad \\"type\\"\\] with' in m["params"]


def test_frame_counts_octets() -> None:
    record = syslog_record(sample("login.success", seq=1), hostname="h")
    length, _, rest = frame(record).partition(b" ")
    assert int(length) == len(record) == len(rest)


def test_spool_resumes_from_its_durable_cursor(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for seq in (1, 2, 3):
        assert spool.append(seq, b"r%d" % seq)
    assert not spool.append(2, b"again")  # replays are ignored
    spool.mark_sent(2)
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert [(e.seq, e.frame) for e in reopened.pending()] == [(3, b"r3")]
    assert reopened.status().sent == 2
    assert reopened.last_spooled == 3


def test_spool_ignores_a_torn_tail_and_appends_to_a_new_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(1, b"one")
    (segment,) = tmp_path.glob("segment-*.spool")
    with segment.open("ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x50par")  # crash mid-append
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert [e.seq for e in reopened.pending()] == [1]
    reopened.append(2, b"two")
    assert [e.seq for e in Spool(tmp_path, max_bytes=1 << 20).pending()] == [1, 2]


def test_spool_cap_drops_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4096, segment_bytes=512)
    for seq in range(1, 101):
        spool.append(seq, b"x" * 100)
    status = spool.status()
    assert status.bytes <= 4096
    assert status.dropped > 0
    pending = [e.seq for e in spool.pending()]
    assert pending == list(range(101 - len(pending), 101))  # the newest survive, in order
    assert status.dropped + len(pending) == 100
    assert Spool(tmp_path, max_bytes=4096).dropped == status.dropped


def test_delivered_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=300)
    for seq in range(1, 21):
        spool.append(seq, b"y" * 100)
    before = len(list(tmp_path.glob("segment-*.spool")))
    spool.mark_sent(20)
    after = len(list(tmp_path.glob("segment-*.spool")))
    assert before > 3
    assert after <= 1
    assert spool.pending() == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _refused() -> socket.socket:
    return socket.create_connection(("127.0.0.1", _closed_port()), timeout=2)


def test_unreachable_repository_backs_off_exponentially(tmp_path: Path, clock: FakeClock) -> None:
    settings = SyslogSettings(host="127.0.0.1", retry_initial=1, retry_max=4)
    fwd = SyslogForwarder(settings, site=tmp_path, clock=clock, connector=_refused)
    fwd.emit(sample("login.success", seq=1))
    delays = []
    for _ in range(4):
        report = fwd.deliver()
        assert report.sent == 0
        assert report.pending == 1
        assert report.error is not None
        assert report.next_attempt is not None
        delays.append((report.next_attempt - clock.now()).total_seconds())
        assert fwd.deliver().sent == 0  # still backing off: no attempt
        clock.advance(timedelta(seconds=delays[-1]))
    assert delays == [1, 2, 4, 4]
    assert fwd.run_once() > 0


def test_event_without_seq_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    fwd = SyslogForwarder(SyslogSettings(host="127.0.0.1"), site=tmp_path, clock=clock, connector=_refused)
    event = sample("login.success")
    with pytest.raises(AuditTransportError, match="no seq"):
        fwd.emit(AuditEvent(type=event.type, occurred_at=event.occurred_at))


def test_missing_ca_file_is_a_clear_error(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(AuditTransportError, match="ca_file"):
        SyslogForwarder(SyslogSettings(host="127.0.0.1", ca_file="nope.pem"), site=tmp_path, clock=clock)


class ListLog:
    """A fake of the SeqEventSource protocol over a list (the real log is another component)."""

    def __init__(self, events: list[AuditEvent]) -> None:
        self.events = events

    def events_after(self, after: int, limit: int) -> list[AuditEvent]:
        return [e for e in self.events if e.seq is not None and e.seq > after][:limit]


def test_pull_spools_only_new_events_and_resumes_after_restart(tmp_path: Path, clock: FakeClock) -> None:
    log = ListLog([sample("study.read", seq) for seq in range(1, 6)])
    settings = SyslogSettings(host="127.0.0.1")
    fwd = SyslogForwarder(settings, site=tmp_path, clock=clock, connector=_refused)
    assert fwd.pull(log, limit=3) == 3
    assert fwd.pull(log) == 2
    assert fwd.pull(log) == 0
    log.events.append(sample("study.read", 6))
    again = SyslogForwarder(settings, site=tmp_path, clock=clock, connector=_refused)
    assert again.pull(log) == 1
    assert [e.seq for e in again.spool.pending()] == [1, 2, 3, 4, 5, 6]


def test_pull_stops_at_a_full_spool_instead_of_dropping(tmp_path: Path, clock: FakeClock) -> None:
    log = ListLog([sample("study.read", seq) for seq in range(1, 40)])
    settings = SyslogSettings(host="127.0.0.1", spool_max_bytes=8192)
    fwd = SyslogForwarder(settings, site=tmp_path, clock=clock, connector=_refused)
    taken = fwd.pull(log)
    assert 0 < taken < 39
    status = fwd.status()
    assert (status.dropped, status.pending, status.last_spooled) == (0, taken, taken)
    assert fwd.pull(log) == 0  # still full: the rest waits in the log


def test_a_fixed_msgid_can_be_configured() -> None:
    m = HEADER.match(syslog_record(sample("study.read", seq=1), hostname="h", msgid="IHE+RFC-3881"))
    assert m is not None
    assert m["msgid"] == b"IHE+RFC-3881"
    with pytest.raises(ValueError, match="msgid"):
        SyslogSettings(host="h", msgid="has space")
