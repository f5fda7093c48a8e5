"""A real ATNA sender: Debian's rsyslog reads DICOM audit XML from a file (imfile) and
forwards it to pacsguard's receiver over TLS (gtls driver, octet-counted framing, a
client certificate from the site CA). Each message must land in the audit log, which
then verifies."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.audit.export_dicom import AuditSource, to_dicom_xml
from pacsguard.audit.reader import LogReader
from pacsguard.cli import main
from pacsguard.ingest.syslog_server import ReceiverThread
from pacsguard.ingest.wiring import open_receiver
from pacsguard.pki import issue_client, load_ca
from tests.tls import write_pair
from tests.unit.audit.export_samples import sample
from tests.unit.ingest.conftest import wait_for

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
TYPES = ["login.success", "login.failure", "study.read", "study.query", "study.store", "study.export",
         "study.delete", "audit.log.used", "break_glass.granted", "consent.created"]  # fmt: skip


def client_config(d: Path, port: int, spool: Path) -> Path:
    """rsyslog as an ATNA client: imfile in, omfwd over TLS out, RFC 5424 with octet counting."""
    conf = d / "rsyslog-client.conf"
    conf.write_text(
        f"""
global(
  workDirectory="{d}"
  maxMessageSize="64k"
  defaultNetstreamDriverCAFile="{d / "ca.pem"}"
  defaultNetstreamDriverCertFile="{d / "client.pem"}"
  defaultNetstreamDriverKeyFile="{d / "client-key.pem"}"
)
module(load="imfile" mode="inotify")
input(type="imfile" file="{spool}" tag="atna" facility="authpriv" severity="notice" ruleset="atna")
ruleset(name="atna") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         streamDriver="gtls" streamDriverMode="1" streamDriverAuthMode="x509/name"
         streamDriverPermittedPeers="localhost"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"""
    )
    return conf


@pytest.fixture
def site(make_site: Callable[..., Path]) -> Path:
    site = make_site()
    assert main(["pki", "init", "--site", str(site)]) == 0
    with (site / "pacsguard.toml").open("a") as f:
        f.write("\n[audit.receiver]\ntls_port = 0\nrequire_client_cert = true\n")
    return site


@pytest.fixture
def rsyslog_dir(site: Path, tmp_path: Path) -> Path:
    d = tmp_path / "sender"
    d.mkdir()
    ca = load_ca(site / "pki" / "ca.pem", site / "pki" / "ca-key.pem")
    write_pair(d, "client", issue_client(ca, datetime.now(UTC), "modality7", ae_title="CT7"))
    shutil.copyfile(site / "pki" / "ca.pem", d / "ca.pem")
    return d


@pytest.fixture
def receiver(site: Path) -> Iterator[ReceiverThread]:
    settings = config.load(site)
    opened = open_site(settings)
    thread = open_receiver(settings, opened.engine, opened.audit, opened.clock)
    assert thread is not None
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
        opened.close()


def test_rsyslog_forwards_dicom_audit_messages_over_tls(
    site: Path, rsyslog_dir: Path, receiver: ReceiverThread, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path(RSYSLOGD).exists():
        pytest.fail("rsyslogd is missing: run scripts/system-deps (Debian packages rsyslog, rsyslog-gnutls)")
    assert receiver.server is not None
    assert receiver.server.tls_address is not None
    spool = rsyslog_dir / "audit.xml"
    source = AuditSource("PACS-7")
    spool.write_text("".join(to_dicom_xml(sample(t, i), source).decode() + "\n" for i, t in enumerate(TYPES)))
    conf = client_config(rsyslog_dir, receiver.server.tls_address[1], spool)
    with (rsyslog_dir / "rsyslogd.out").open("ab") as out:
        process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(rsyslog_dir / "rsyslogd.pid")], stdout=out, stderr=out
        )
    try:
        wait_for(lambda: receiver.stats().get("durable", 0) >= len(TYPES) or process.poll() is not None, "delivery")
        assert process.poll() is None, (rsyslog_dir / "rsyslogd.out").read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
    stats = receiver.stats()
    assert (stats["durable"], stats["quarantined"], stats["tls_failures"]) == (len(TYPES), 0, 0)

    settings = config.load(site)
    with open_site(settings) as opened:
        events = list(LogReader(opened.engine).events_after(-1, 1000))
    assert [e.type for e in events] == TYPES  # each message, in order, with its own type
    for i, event in enumerate(events):
        assert event.occurred_at == sample(TYPES[i], i).occurred_at
        ingest = event.detail["ingest"]
        assert isinstance(ingest, dict)
        assert ingest["transport"] == "tls"
        assert "CN=CT7" in str(ingest["source"])
        assert ingest["syslog"]["app_name"] == "atna"  # type: ignore[index,call-overload]
    capsys.readouterr()
    assert main(["audit", "verify", "--site", str(site)]) == 0
    assert "ok:" in capsys.readouterr().out
