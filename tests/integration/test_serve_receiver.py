"""``pacsguard serve`` with ``[audit.receiver]``: the ATNA receiver runs beside the gateway in
the same process, takes DICOM audit messages over TLS (client certificate from the site CA)
and over UDP, counts them on ``/metrics``, and writes them to the site's one audit log,
which verifies afterwards. A sender without a certificate is refused and counted."""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.audit.export_dicom import AuditSource
from pacsguard.audit.reader import LogReader
from pacsguard.audit.syslog import frame, syslog_record
from pacsguard.cli import main
from pacsguard.pki import issue_client, load_ca
from tests.postgres import free_port
from tests.serving import serve_process
from tests.tls import write_pair
from tests.unit.audit.export_samples import sample
from tests.unit.ingest.conftest import send_over_tls

TLS_TYPES = ["login.success", "study.read", "study.export"]
UDP_TYPE = "study.query"


@pytest.fixture
def site(make_site: Callable[..., Path]) -> tuple[Path, int, int]:
    site = make_site()
    assert main(["pki", "init", "--site", str(site)]) == 0
    tls_port, udp_port = free_port(), free_port()
    with (site / "pacsguard.toml").open("a") as f:
        f.write(
            f'\n[audit.receiver]\nhost = "127.0.0.1"\ntls_port = {tls_port}\nudp_port = {udp_port}\n'
            "require_client_cert = true\n"
        )
    return site, tls_port, udp_port


def _client(site: Path, directory: Path, *, certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(site / "pki" / "ca.pem"))
    if certificate:
        ca = load_ca(site / "pki" / "ca.pem", site / "pki" / "ca-key.pem")
        cert, key = write_pair(directory, "modality", issue_client(ca, datetime.now(UTC), "modality9", ae_title="MR9"))
        context.load_cert_chain(cert, key)
    return context


def _record(event_type: str, index: int) -> bytes:
    return syslog_record(sample(event_type, index), hostname="mr9.example", app_name="atna", source=AuditSource("MR-9"))


def _counters(base: str, verify: ssl.SSLContext) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", verify=verify).text
    return {m[1]: float(m[2]) for m in re.finditer(r"^pacsguard_ingest_(\w+?)(?:_total)? (\S+)$", text, re.M)}


def _wait(base: str, verify: ssl.SSLContext, done: Callable[[dict[str, float]], bool]) -> dict[str, float]:
    deadline = time.monotonic() + 30
    counters = _counters(base, verify)
    while not done(counters) and time.monotonic() < deadline:
        time.sleep(0.1)
        counters = _counters(base, verify)
    return counters


def test_serve_runs_the_receiver_into_the_sites_log(
    site: tuple[Path, int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, tls_port, udp_port = site
    trust = ssl.create_default_context(cafile=str(path / "pki" / "ca.pem"))
    with serve_process(path, "--no-monitor", verify=trust) as base:
        assert "ATNA receiver: syslog over TLS" in (path / "serve.log").read_text()
        records = b"".join(frame(_record(t, i)) for i, t in enumerate(TLS_TYPES))
        address = ("127.0.0.1", tls_port)
        send_over_tls(_client(path, tmp_path, certificate=True), address, records)
        send_over_tls(_client(path, tmp_path, certificate=False), address, frame(_record("login.failure", 9)))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(_record(UDP_TYPE, len(TLS_TYPES)), ("127.0.0.1", udp_port))
        counters = _wait(
            base, trust, lambda c: c.get("durable", 0) >= len(TLS_TYPES) + 1 and c.get("tls_failures", 0) >= 1
        )
        assert counters["durable"] == len(TLS_TYPES) + 1, counters
        assert counters["tls_failures"] == 1, counters  # the sender without a certificate
        assert counters.get("quarantined", 0) == 0, counters
        health = httpx.get(f"{base}/healthz", verify=trust).json()
        assert health["status"] == "ok", health
        assert health["ingest"]["durable"] == len(TLS_TYPES) + 1, health

    with open_site(config.load(path)) as opened:
        events = list(LogReader(opened.engine).events_after(-1, 1000))
    received = [e for e in events if isinstance(e.detail.get("ingest"), dict)]
    assert sorted(e.type for e in received) == sorted([*TLS_TYPES, UDP_TYPE])
    transports = {e.type: e.detail["ingest"]["transport"] for e in received}  # type: ignore[index,call-overload]
    assert transports == {**dict.fromkeys(TLS_TYPES, "tls"), UDP_TYPE: "udp"}
    for event in received:
        index = [*TLS_TYPES, UDP_TYPE].index(event.type)
        assert event.occurred_at == sample(event.type, index).occurred_at  # the message's own time
    tls_sources = {str(e.detail["ingest"]["source"]) for e in received if e.type in TLS_TYPES}  # type: ignore[index,call-overload]
    assert all("CN=MR9" in s for s in tls_sources), tls_sources  # from the sender's certificate
    capsys.readouterr()
    assert main(["audit", "verify", "--site", str(path)]) == 0
    assert "ok:" in capsys.readouterr().out
