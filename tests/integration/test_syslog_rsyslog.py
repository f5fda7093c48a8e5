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


def _issue(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str, usage: x509.ObjectIdentifier, directory: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    stem = "cert" if usage == ExtendedKeyUsageOID.SERVER_AUTH else "client"
    (directory / f"{stem}.pem").write_bytes(
        builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    )
    (directory / f"{stem}-key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _make_pki(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate for pacsguard."""
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
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _issue(ca, ca_key, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, directory)
    _issue(ca, ca_key, "pacsguard", ExtendedKeyUsageOID.CLIENT_AUTH, directory)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rsyslog:
    """One rsyslogd on loopback that can be stopped and started again on the same port."""

    directory: Path
    port: int
    auth_mode: str = "anon"  # or "x509/certvalid": clients must present a certificate of the CA
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
  defaultNetstreamDriverKeyFile="{d / "cert-key.pem"}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="{self.auth_mode}")
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


def _forwarder(
    rsyslog: Rsyslog, tmp_path: Path, clock: FakeClock, client_cert: bool = False, expect_refusal: bool = False
) -> SyslogForwarder:
    d = rsyslog.directory
    settings = SyslogSettings(
        host="127.0.0.1",
        port=rsyslog.port,
        ca_file=str(d / "ca.pem"),
        client_cert=str(d / "client.pem") if client_cert else None,
        client_key=str(d / "client-key.pem") if client_cert else None,
        spool_dir="spool",
        retry_initial=1,
        # Waiting for a refusal: it ends the wait at once, so the refused case can wait long.
        confirm_seconds=DEADLINE if expect_refusal else 0.2,
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


def test_mutual_tls_with_a_client_certificate(rsyslog: Rsyslog, tmp_path: Path, clock: FakeClock) -> None:
    rsyslog.auth_mode = "x509/certvalid"  # rsyslog refuses clients without a certificate of the CA
    rsyslog.start()
    fwd = _forwarder(rsyslog, tmp_path, clock, client_cert=True)
    fwd.emit(sample("audit.log.used", 1))
    assert fwd.deliver().sent == 1
    fwd.close()
    (line,) = rsyslog.wait_for_lines(1)
    assert line.startswith('audit.log.used [pacsguard@32473 seq="1"')
    assert 'csd-code="110101"' in line


def test_a_refused_client_is_not_counted_as_delivered(rsyslog: Rsyslog, tmp_path: Path, clock: FakeClock) -> None:
    rsyslog.auth_mode = "x509/certvalid"
    rsyslog.start()
    fwd = _forwarder(rsyslog, tmp_path, clock, client_cert=False, expect_refusal=True)
    fwd.emit(sample("study.read", 1))
    report = fwd.deliver()
    assert (report.sent, report.pending) == (0, 1)
    assert report.error is not None
    assert "client certificate" in report.error or "SSL" in report.error
    assert fwd.status().sent == -1  # nothing delivered: the first event would be seq 0
