"""ITI-20 transport against Debian's rsyslog: TLS (gtls driver) on loopback, octet-counted frames.

The fixture runs ``rsyslogd -n`` with its own configuration and certificates the test
makes; rsyslog writes MSGID, structured data and the raw record to a file we read back.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pacsguard.audit.syslog import SyslogForwarder, SyslogSettings
from pacsguard.clock import FakeClock
from tests.unit.audit.export_samples import sample

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

DEADLINE = 20.0  # seconds; an upper bound for waits, never a sleep that asserts anything


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_pki(directory: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("pacsguard test ARR CA"))
        .issuer_name(_name("pacsguard test ARR CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rsyslog:
    """One rsyslogd on loopback that can be stopped and started again on the same port."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> Path:
        return self.directory / "received.log"

    def configure(self) -> Path:
        d = self.directory
        conf = d / "rsyslog.conf"
        conf.write_text(
            f"""
global(
  workDirectory="{d}"
  maxMessageSize="64k"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{d / "ca.pem"}"
  defaultNetstreamDriverCertFile="{d / "cert.pem"}"
  defaultNetstreamDriverKeyFile="{d / "key.pem"}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" port="{self.port}" address="127.0.0.1")
template(name="received" type="string" string="%msgid% %structured-data% %rawmsg%\\n")
action(type="omfile" file="{self.output}" template="received")
"""
        )
        return conf

    def start(self) -> None:
        if not Path(RSYSLOGD).exists():
            pytest.fail("rsyslogd is missing: run scripts/system-deps (Debian packages rsyslog, rsyslog-gnutls)")
        conf = self.configure()
        with (self.directory / "rsyslogd.out").open("ab") as log:
            self.process = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.directory / "rsyslogd.pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"rsyslogd exited: {(self.directory / 'rsyslogd.out').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("rsyslogd did not listen in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=DEADLINE)
        self.process = None

    def lines(self) -> list[str]:
        if not self.output.exists():
            return []
        return self.output.read_text(encoding="utf-8", errors="replace").splitlines()

    def wait_for_lines(self, count: int) -> list[str]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            lines = self.lines()
            if len(lines) >= count:
                return lines
            time.sleep(0.05)
        return self.lines()


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    directory = tmp_path / "arr"
    directory.mkdir()
    _make_pki(directory)
    server = Rsyslog(directory, _free_port())
    try:
        yield server
    finally:
        server.stop()


def _forwarder(rsyslog: Rsyslog, tmp_path: Path, clock: FakeClock) -> SyslogForwarder:
    settings = SyslogSettings(
        host="127.0.0.1",
        port=rsyslog.port,
        ca_file=str(rsyslog.directory / "ca.pem"),
        spool_dir="spool",
        retry_initial=1,
    )
    return SyslogForwarder(settings, site=tmp_path, clock=clock)


def test_rsyslog_receives_records_over_tls(rsyslog: Rsyslog, tmp_path: Path, clock: FakeClock) -> None:
    rsyslog.start()
    fwd = _forwarder(rsyslog, tmp_path, clock)
    types = ["login.success", "study.read", "break_glass.granted"]
    for seq, event_type in enumerate(types, start=1):
        fwd.emit(sample(event_type, seq))
    report = fwd.deliver()
    assert (report.sent, report.pending, report.error) == (3, 0, None)
    fwd.close()
    lines = rsyslog.wait_for_lines(3)
    assert len(lines) == 3, lines
    for seq, (event_type, line) in enumerate(zip(types, lines, strict=True), start=1):
        assert line.startswith(f'{event_type} [pacsguard@32473 seq="{seq}" type="{event_type}"] <')
        assert "<AuditMessage><EventIdentification" in line
        assert line.endswith("</AuditMessage>")
    assert 'csd-code="110114"' in lines[0]
    assert 'csd-code="110127"' in lines[2]
    assert fwd.status().sent == 3


def test_records_wait_in_the_spool_until_rsyslog_is_back(rsyslog: Rsyslog, tmp_path: Path, clock: FakeClock) -> None:
    fwd = _forwarder(rsyslog, tmp_path, clock)
    for seq in (1, 2, 3):
        fwd.emit(sample("study.read", seq))
    down = fwd.deliver()
    assert (down.sent, down.pending) == (0, 3)
    assert down.error is not None

    rsyslog.start()
    assert fwd.deliver().sent == 0  # still backing off: the clock has not moved
    clock.advance(timedelta_seconds(1))
    assert fwd.deliver().sent == 3
    assert [_seq(line) for line in rsyslog.wait_for_lines(3)] == [1, 2, 3]

    # The repository goes away while the forwarder holds a connection; a new forwarder
    # (a restart) resumes from the durable cursor and sends only what is new, in order.
    rsyslog.stop()
    for seq in (4, 5):
        fwd.emit(sample("study.read", seq))
    assert fwd.deliver().pending == 2
    fwd.close()
    rsyslog.start()
    restarted = _forwarder(rsyslog, tmp_path, clock)
    assert restarted.status().sent == 3
    assert restarted.deliver().sent == 2
    restarted.close()
    assert [_seq(line) for line in rsyslog.wait_for_lines(5)] == [1, 2, 3, 4, 5]


def timedelta_seconds(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


def _seq(line: str) -> int:
    return int(line.split('seq="', 1)[1].split('"', 1)[0])
