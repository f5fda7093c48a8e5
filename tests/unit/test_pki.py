"""The development PKI: certificate profiles, file modes, keys, and a real TLS handshake."""

from __future__ import annotations

import hashlib
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pacsguard import pki
from pacsguard.clock import FakeClock
from pacsguard.errors import ConfigError
from tests import tls


@pytest.fixture
def ca(clock: FakeClock) -> pki.CertificateAuthority:
    return pki.create_ca(clock.now(), common_name="Test CA", days=30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_self_signed_ca_valid_from_now(ca: pki.CertificateAuthority, clock: FakeClock) -> None:
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    assert ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert ca.cert.not_valid_before_utc == clock.now()
    assert ca.cert.not_valid_after_utc == clock.now() + timedelta(days=30)
    ca.cert.verify_directly_issued_by(ca.cert)


def test_server_certificate_names_and_usage(ca: pki.CertificateAuthority, clock: FakeClock) -> None:
    server = pki.issue_server(ca, clock.now(), dns_names=["localhost", "pacs.example"], ips=["127.0.0.1", "::1"])
    sans = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "pacs.example"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert _eku(server.cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not server.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.cert.verify_directly_issued_by(ca.cert)


def test_server_certificate_needs_a_name(ca: pki.CertificateAuthority, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="at least one"):
        pki.issue_server(ca, clock.now(), dns_names=[], ips=[])
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        pki.issue_server(ca, clock.now(), ips=["10.0.0.x"])


def test_device_certificate_carries_the_ae_title(ca: pki.CertificateAuthority, clock: FakeClock) -> None:
    device = pki.issue_client(ca, clock.now(), "ct-1", ae_title="CT_SCANNER_1 ", days=10)
    subject = device.cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CT_SCANNER_1"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == pki.DEVICE_UNIT
    assert _eku(device.cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert device.cert.not_valid_after_utc == clock.now() + timedelta(days=10)


def test_user_certificate_names_the_user(ca: pki.CertificateAuthority, clock: FakeClock) -> None:
    user = pki.issue_client(ca, clock.now(), "alice")
    assert user.cert.subject.rfc4514_string() == "CN=alice,OU=user"


@pytest.mark.parametrize("ae_title", ["", "   ", "A" * 17, "BAD\\AE", "TAB\tAE", "ÄRZTE"])
def test_bad_ae_titles_are_refused(ca: pki.CertificateAuthority, clock: FakeClock, ae_title: str) -> None:
    with pytest.raises(ValueError, match="AE title"):
        pki.issue_client(ca, clock.now(), "dev", ae_title=ae_title)


def test_validity_of_at_least_a_day(ca: pki.CertificateAuthority, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        pki.issue_client(ca, clock.now(), "alice", days=0)


def test_fingerprint_is_sha256_of_der_in_lower_hex(ca: pki.CertificateAuthority) -> None:
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    assert pki.fingerprint(ca.cert) == hashlib.sha256(der).hexdigest()
    assert ca.fingerprint == pki.fingerprint(ca.cert)
    assert len(ca.fingerprint) == 64
    assert ca.fingerprint == ca.fingerprint.lower()


def test_private_keys_are_written_0600_even_over_a_readable_file(ca: pki.CertificateAuthority, tmp_path: Path) -> None:
    key_path = tmp_path / "pki" / "ca-key.pem"
    key_path.parent.mkdir()
    key_path.write_text("old")
    key_path.chmod(0o644)
    ca.write(tmp_path / "pki" / "ca.pem", key_path)
    assert _mode(key_path) == 0o600
    assert _mode(tmp_path / "pki" / "ca.pem") == 0o644
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["ca-key.pem", "ca.pem"]  # no temp files left


def test_ca_round_trips_through_files(ca: pki.CertificateAuthority, tmp_path: Path) -> None:
    ca.write(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    loaded = pki.load_ca(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    assert loaded.fingerprint == ca.fingerprint
    assert loaded.key.private_numbers() == ca.key.private_numbers()


def test_load_ca_refuses_a_key_of_another_ca(ca: pki.CertificateAuthority, clock: FakeClock, tmp_path: Path) -> None:
    other = pki.create_ca(clock.now())
    ca.write(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    pki.write_private(tmp_path / "ca-key.pem", other.key_pem())
    with pytest.raises(ConfigError, match="is not the EC private key"):
        pki.load_ca(tmp_path / "ca.pem", tmp_path / "ca-key.pem")


def test_load_ca_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        pki.load_ca(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    assert caught.value.problems[0].file == tmp_path / "ca.pem"


def test_signing_key_signs_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    key = pki.make_signing_key(path)
    assert _mode(path) == 0o600
    loaded = pki.load_signing_key(path)
    signature = loaded.sign(b"tree head")
    key.public_key().verify(signature, b"tree head")


def test_load_signing_key_refuses_other_keys(ca: pki.CertificateAuthority, tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    pki.write_private(path, ca.key_pem())
    with pytest.raises(ConfigError, match="not an Ed25519"):
        pki.load_signing_key(path)
    path.write_text("garbage")
    with pytest.raises(ConfigError, match="not a readable"):
        pki.load_signing_key(path)


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_server_certificate_works_in_a_real_tls_handshake(tmp_path: Path, hostname: str) -> None:
    now = datetime.now(UTC)  # OpenSSL checks validity against the wall clock
    ca = pki.create_ca(now)
    cert, key = tls.write_pair(tmp_path, "server", pki.issue_server(ca, now))
    result = tls.handshake(tls.server_context(cert, key), tls.client_context(ca.cert_pem()), hostname)
    assert result.succeeded, result


def test_tls_client_refuses_a_name_the_certificate_does_not_carry(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ca = pki.create_ca(now)
    cert, key = tls.write_pair(tmp_path, "server", pki.issue_server(ca, now))
    result = tls.handshake(tls.server_context(cert, key), tls.client_context(ca.cert_pem()), "pacs.example")
    assert isinstance(result.client_error, ssl.SSLCertVerificationError)
    assert "pacs.example" in str(result.client_error)


def test_tls_client_refuses_a_server_of_another_ca(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    site, other = pki.create_ca(now), pki.create_ca(now)
    cert, key = tls.write_pair(tmp_path, "server", pki.issue_server(other, now))
    result = tls.handshake(tls.server_context(cert, key), tls.client_context(site.cert_pem()))
    assert isinstance(result.client_error, ssl.SSLCertVerificationError)
    assert not result.succeeded
