"""``pacsguard pki init`` and ``pacsguard pki issue`` on a scaffolded site."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pacsguard import pki
from pacsguard.cli import main
from pacsguard.directory.certificates import ClientCertificateVerifier
from tests import tls

SiteFactory = Callable[..., Path]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def site(make_site: SiteFactory) -> Path:
    return make_site()


@pytest.fixture
def initialised(site: Path) -> Path:
    assert main(["pki", "init", "--site", str(site)]) == 0
    return site


def test_init_writes_ca_server_certificate_and_signing_key(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "init", "--site", str(site)]) == 0
    out = capsys.readouterr().out
    ca = pki.load_ca(site / "pki/ca.pem", site / "pki/ca-key.pem")
    assert ca.fingerprint in out
    for private in ("ca-key.pem", "server-key.pem", "signing-key.pem"):
        assert _mode(site / "pki" / private) == 0o600, private
    for public in ("ca.pem", "server.pem"):
        assert _mode(site / "pki" / public) == 0o644, public
    pki.load_signing_key(site / "pki/signing-key.pem")
    pki.load_certificate(site / "pki/server.pem").verify_directly_issued_by(ca.cert)


def test_init_server_certificate_serves_tls_on_loopback(initialised: Path) -> None:
    ca_pem = (initialised / "pki/ca.pem").read_bytes()
    server = tls.server_context(initialised / "pki/server.pem", initialised / "pki/server-key.pem")
    for hostname in ("localhost", "127.0.0.1"):
        result = tls.handshake(server, tls.client_context(ca_pem), hostname)
        assert result.succeeded, (hostname, result)


def test_init_twice_refuses_without_force(initialised: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (initialised / "pki/ca.pem").read_bytes()
    capsys.readouterr()
    assert main(["pki", "init", "--site", str(initialised)]) == 2
    captured = capsys.readouterr()
    assert "--force" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert (initialised / "pki/ca.pem").read_bytes() == before

    assert main(["pki", "init", "--force", "--site", str(initialised)]) == 0
    assert (initialised / "pki/ca.pem").read_bytes() != before
    assert _mode(initialised / "pki/ca-key.pem") == 0o600


def test_init_follows_the_paths_in_the_settings(make_site: SiteFactory) -> None:
    site = make_site(**{"pacsguard.toml": '[pki]\nca_cert = "certs/root.pem"\nca_key = "keys/root-key.pem"\n'})
    assert main(["pki", "init", "--site", str(site)]) == 0
    assert (site / "certs/root.pem").is_file()
    assert _mode(site / "keys/root-key.pem") == 0o600


def test_issue_device_client_prints_a_fingerprint_the_verifier_agrees_with(
    initialised: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = ["pki", "issue", "client", "ct-1", "--ae-title", "CT_SCANNER_1", "--days", "30", "--site", str(initialised)]
    assert main(args) == 0
    out = capsys.readouterr().out
    cert_path = initialised / "pki/clients/ct-1.pem"
    assert _mode(initialised / "pki/clients/ct-1-key.pem") == 0o600
    verifier = ClientCertificateVerifier((initialised / "pki/ca.pem").read_bytes())
    verified = verifier.verify(cert_path.read_bytes(), datetime.now(UTC))
    assert verified.ae_title == "CT_SCANNER_1"
    assert re.search(rf"fingerprint\s+{verified.fingerprint}", out)


def test_issue_server_with_names(initialised: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pki", "issue", "server", "web", "--dns", "pacs.example", "--ip", "10.1.2.3", "--site", str(initialised)]
    assert main(args) == 0
    cert = pki.load_certificate(initialised / "pki/servers/web.pem")
    assert pki.fingerprint(cert) in capsys.readouterr().out
    assert "pacs.example" in str(cert.extensions)
    assert "10.1.2.3" in str(cert.extensions)


def test_issue_refuses_to_overwrite_without_force(initialised: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pki", "issue", "client", "alice", "--site", str(initialised)]
    assert main(args) == 0
    first = (initialised / "pki/clients/alice.pem").read_bytes()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert (initialised / "pki/clients/alice.pem").read_bytes() == first
    assert main([*args, "--force"]) == 0
    assert (initialised / "pki/clients/alice.pem").read_bytes() != first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["client", "dev", "--ae-title", "A_VERY_LONG_AE_TITLE"], "AE title"),
        (["client", "../escape"], "plain file name"),
        (["server", "web", "--ip", "10.0.0.x"], "not an IPv4 or IPv6"),
        (["server", "web", "--dns", "ärzte.example"], "A-label"),
        (["client", "alice", "--days", "0"], "--days"),
        (["client", "x" * 70], "<= 64"),
    ],
)
def test_bad_input_exits_2_without_traceback(
    initialised: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(["pki", "issue", *args, "--site", str(initialised)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (initialised / "pki/clients/../escape.pem").exists()


def test_issue_before_init_names_the_missing_ca(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "issue", "client", "alice", "--site", str(site)]) == 2
    err = capsys.readouterr().err
    assert "ca.pem" in err
    assert "Traceback" not in err
