"""Client certificates: verified against the site CA, refused with a precise reason."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pacsguard import pki
from pacsguard.clock import FakeClock
from pacsguard.directory.certificates import ClientCertificateVerifier, VerifiedCertificate
from pacsguard.errors import CertificateError, ConfigError
from tests import tls


@pytest.fixture
def ca(clock: FakeClock) -> pki.CertificateAuthority:
    return pki.create_ca(clock.now(), common_name="Site CA")


@pytest.fixture
def verifier(ca: pki.CertificateAuthority) -> ClientCertificateVerifier:
    return ClientCertificateVerifier(ca.cert_pem())


def _refusal(verifier: ClientCertificateVerifier, cert: bytes, now: datetime) -> str:
    with pytest.raises(CertificateError) as caught:
        verifier.verify(cert, now)
    return caught.value.reason


def test_device_certificate_is_accepted_with_its_ae_title(
    ca: pki.CertificateAuthority, verifier: ClientCertificateVerifier, clock: FakeClock
) -> None:
    device = pki.issue_client(ca, clock.now(), "ct-1", ae_title="CT_SCANNER_1", days=30)
    verified = verifier.verify(device.cert_pem(), clock.advance(hours=1))
    assert verified == VerifiedCertificate(
        fingerprint=device.fingerprint,
        subject="CN=CT_SCANNER_1,OU=device",
        common_name="CT_SCANNER_1",
        ae_title="CT_SCANNER_1",
        not_after=device.cert.not_valid_after_utc,
    )


def test_user_certificate_has_no_ae_title_and_der_is_accepted(
    ca: pki.CertificateAuthority, verifier: ClientCertificateVerifier, clock: FakeClock
) -> None:
    user = pki.issue_client(ca, clock.now(), "alice")
    verified = verifier.verify(user.cert.public_bytes(serialization.Encoding.DER), clock.now())
    assert (verified.common_name, verified.ae_title, verified.subject) == ("alice", None, "CN=alice,OU=user")


def test_certificate_of_another_ca_is_refused(verifier: ClientCertificateVerifier, clock: FakeClock) -> None:
    other = pki.create_ca(clock.now(), common_name="Rogue CA")
    rogue = pki.issue_client(other, clock.now(), "CT_SCANNER_1", ae_title="CT_SCANNER_1")
    assert _refusal(verifier, rogue.cert_pem(), clock.now()) == "untrusted_issuer"


def test_another_ca_copying_the_site_ca_name_is_refused(
    ca: pki.CertificateAuthority, verifier: ClientCertificateVerifier, clock: FakeClock
) -> None:
    impostor = pki.create_ca(clock.now(), common_name="Site CA")
    assert impostor.cert.subject == ca.cert.subject
    forged = pki.issue_client(impostor, clock.now(), "CT_SCANNER_1", ae_title="CT_SCANNER_1")
    assert _refusal(verifier, forged.cert_pem(), clock.now()) == "bad_signature"


def test_expired_and_not_yet_valid(
    ca: pki.CertificateAuthority, verifier: ClientCertificateVerifier, clock: FakeClock
) -> None:
    user = pki.issue_client(ca, clock.now(), "alice", days=30)
    assert _refusal(verifier, user.cert_pem(), clock.now() - timedelta(seconds=1)) == "not_yet_valid"
    assert verifier.verify(user.cert_pem(), clock.now() + timedelta(days=30)).common_name == "alice"
    assert _refusal(verifier, user.cert_pem(), clock.now() + timedelta(days=30, seconds=1)) == "expired"


def test_server_certificate_is_not_a_client_certificate(
    ca: pki.CertificateAuthority, verifier: ClientCertificateVerifier, clock: FakeClock
) -> None:
    server = pki.issue_server(ca, clock.now())
    assert _refusal(verifier, server.cert_pem(), clock.now()) == "not_client_auth"


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_malformed_input(verifier: ClientCertificateVerifier, clock: FakeClock, data: bytes) -> None:
    assert _refusal(verifier, data, clock.now()) == "malformed"


def test_path_validation_refuses_what_the_explicit_checks_let_pass(
    ca: pki.CertificateAuthority, verifier: ClientCertificateVerifier, clock: FakeClock
) -> None:
    # Correctly signed, valid now, clientAuth, but itself a CA: RFC 5280 profile says no.
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sub-CA")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(clock.now())
        .not_valid_after(clock.now() + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    with pytest.raises(CertificateError) as caught:
        verifier.verify(cert.public_bytes(serialization.Encoding.PEM), clock.now())
    assert caught.value.reason == "untrusted_issuer"
    assert "path validation" in str(caught.value)


def test_an_expired_site_ca_trusts_nothing(clock: FakeClock) -> None:
    short_ca = pki.create_ca(clock.now(), days=10)
    user = pki.issue_client(short_ca, clock.now(), "alice", days=365)
    verifier = ClientCertificateVerifier(short_ca.cert_pem())
    assert verifier.verify(user.cert_pem(), clock.now() + timedelta(days=9)).common_name == "alice"
    assert _refusal(verifier, user.cert_pem(), clock.now() + timedelta(days=11)) == "untrusted_issuer"


def test_verifier_needs_a_ca_certificate() -> None:
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        ClientCertificateVerifier(b"not a certificate")


def test_real_tls_handshake_accepts_the_site_ca_and_refuses_another(tmp_path: Path) -> None:
    now = datetime.now(UTC)  # OpenSSL checks validity against the wall clock
    site, rogue_ca = pki.create_ca(now, common_name="Site CA"), pki.create_ca(now, common_name="Site CA")
    server_cert, server_key = tls.write_pair(tmp_path, "server", pki.issue_server(site, now))
    server = tls.server_context(server_cert, server_key, client_ca_pem=site.cert_pem())
    verifier = ClientCertificateVerifier(site.cert_pem())

    good = pki.issue_client(site, now, "ct", ae_title="CT_SCANNER_1")
    accepted = tls.handshake(server, tls.client_context(site.cert_pem(), *tls.write_pair(tmp_path, "good", good)))
    assert accepted.succeeded, accepted
    assert accepted.peer_certificate is not None
    verified = verifier.verify(accepted.peer_certificate, datetime.now(UTC))
    assert (verified.fingerprint, verified.ae_title) == (good.fingerprint, "CT_SCANNER_1")

    forged = pki.issue_client(rogue_ca, now, "ct", ae_title="CT_SCANNER_1")
    refused = tls.handshake(server, tls.client_context(site.cert_pem(), *tls.write_pair(tmp_path, "forged", forged)))
    assert isinstance(refused.server_error, ssl.SSLError)
    assert "certificate verify failed" in str(refused.server_error)
    assert refused.peer_certificate is None
    assert not refused.succeeded
    assert _refusal(verifier, forged.cert_pem(), datetime.now(UTC)) == "bad_signature"


def test_real_tls_handshake_without_a_client_certificate_is_refused(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    site = pki.create_ca(now)
    server_cert, server_key = tls.write_pair(tmp_path, "server", pki.issue_server(site, now))
    server = tls.server_context(server_cert, server_key, client_ca_pem=site.cert_pem())
    refused = tls.handshake(server, tls.client_context(site.cert_pem()))
    assert isinstance(refused.server_error, ssl.SSLError)
    assert not refused.succeeded
