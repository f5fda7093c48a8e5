"""End to end, ATNA: ``pacsguard serve`` as a process with ``[audit.syslog]`` pointing at Debian's
rsyslog over TLS; a request through the gateway arrives in rsyslog's output as a DICOM audit message."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_serve import ARCHIVES, _token
from tests.integration.test_syslog_rsyslog import DEADLINE, Rsyslog, _free_port, _make_pki
from tests.serving import serve_process


@pytest.fixture
def arr(tmp_path: Path) -> Iterator[Rsyslog]:
    """An Audit Record Repository: rsyslogd with TLS on loopback."""
    directory = tmp_path / "arr"
    directory.mkdir()
    _make_pki(directory)
    server = Rsyslog(directory, _free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def site(make_site: Callable[..., Path], add_person: Callable[..., None], arr: Rsyslog) -> Path:
    site = make_site()
    syslog = (
        f'\n[audit.syslog]\nhost = "127.0.0.1"\nport = {arr.port}\nca_file = "{arr.directory / "ca.pem"}"\n'
        "retry_initial = 0.5\nconfirm_seconds = 0.2\n"
    )
    (site / "pacsguard.toml").write_text((site / "pacsguard.toml").read_text() + ARCHIVES + syslog)
    add_person(site, "alice", "north", "radiologist")
    return site


def serving(site: Path) -> contextlib.AbstractContextManager[str]:
    """``pacsguard serve --no-tls`` in its own process, until it answers ``/healthz``."""
    return serve_process(site, "--no-tls", "--no-monitor")


def _wait_for(arr: Rsyslog, found: Callable[[str], bool]) -> list[str]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        lines = arr.lines()
        if any(found(line) for line in lines):
            return lines
        time.sleep(0.1)
    return arr.lines()


def test_a_request_reaches_rsyslog_as_a_dicom_audit_message(
    site: Path, arr: Rsyslog, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = _token(site, "alice", capsys)
    with serving(site) as base:
        answer = httpx.get(
            f"{base}/dicomweb/studies?PatientID=P-ATNA", headers={"Authorization": f"Bearer {alice}"}, timeout=30
        )
        assert answer.status_code in (200, 204), answer.text
        lines = _wait_for(arr, lambda line: line.startswith("study.query "))
    queries = [line for line in lines if line.startswith("study.query ")]
    assert queries, f"rsyslog received: {lines}\nserve log: {(site / 'serve.log').read_text()}"
    record = queries[-1]
    assert '[pacsguard@32473 seq="' in record
    assert "<AuditMessage><EventIdentification" in record
    assert 'csd-code="110112"' in record  # DICOM "Query" (PS3.15 A.5.3.9)
    assert "alice" in record
    assert record.endswith("</AuditMessage>")
