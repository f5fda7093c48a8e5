"""A development PKI: a site CA, server and client certificates, and an Ed25519 signing key.

Certificates use ECDSA P-256 with SHA-256, which every TLS 1.3 stack (OpenSSL behind
Python's ``ssl``, dcmtk, browsers) accepts; DICOM PS3.15 B.9 (BCP 195 TLS profile) allows
it. The profile follows RFC 5280 closely enough for ``cryptography``'s own verifier: the
CA has critical basic constraints and key usage, every certificate carries subject and
authority key identifiers and an extended key usage.

Client certificates name their holder in the subject: ``CN=<name>, OU=user`` for a
person, ``CN=<AE title>, OU=device`` for a DICOM node (PS3.15 B.9: node certificates).

Every function takes ``now``; nothing reads the wall clock. Private keys are written with
mode 0600 (atomically, so a key is never readable by others, not even briefly).
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pacsguard.errors import ConfigError, Problem

__all__ = [
    "DEVICE_UNIT",
    "USER_UNIT",
    "CertificateAuthority",
    "IssuedCertificate",
    "create_ca",
    "fingerprint",
    "issue_client",
    "issue_server",
    "load_ca",
    "load_certificate",
    "load_signing_key",
    "make_signing_key",
    "validate_ae_title",
    "write_private",
    "write_public",
]

USER_UNIT = "user"
DEVICE_UNIT = "device"
_AE_TITLE_MAX = 16  # DICOM PS3.5 6.2, value representation AE


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, as issued by the site CA."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return _private_pem(self.key)

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate (0644) and the key (0600); raises ``OSError``."""
        write_private(key_path, self.key_pem())
        write_public(cert_path, self.cert_pem())


@dataclass(frozen=True)
class CertificateAuthority(IssuedCertificate):
    """The site CA: its self-signed certificate and its signing key."""


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lower-case hex without colons."""
    return cert.fingerprint(hashes.SHA256()).hex()


def create_ca(
    now: datetime, *, common_name: str = "pacsguard development CA", days: int = 3650
) -> CertificateAuthority:
    """A new self-signed CA valid from ``now`` for ``days``; it may sign only end entities."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    builder = (
        _base(name, name, public, now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return CertificateAuthority(builder.sign(key, hashes.SHA256()), key)


def issue_server(
    ca: CertificateAuthority,
    now: datetime,
    *,
    dns_names: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1",),
    days: int = 397,
) -> IssuedCertificate:
    """A TLS server certificate (serverAuth) for the given DNS names and IP addresses.

    Raises ``ValueError`` when no name is given or an IP address does not parse.
    """
    if not dns_names and not ips:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0] if dns_names else ips[0])])
    return _issue(ca, now, subject, days, ExtendedKeyUsageOID.SERVER_AUTH, x509.SubjectAlternativeName(sans))


def issue_client(
    ca: CertificateAuthority,
    now: datetime,
    name: str,
    *,
    ae_title: str | None = None,
    days: int = 365,
) -> IssuedCertificate:
    """A TLS client certificate (clientAuth) for a user, or for a DICOM device.

    With ``ae_title`` the subject is ``CN=<AE title>, OU=device``; without it
    ``CN=<name>, OU=user``. Raises ``ValueError`` for an empty name or a bad AE title.
    """
    if ae_title is not None:
        common_name, unit = validate_ae_title(ae_title), DEVICE_UNIT
    elif name.strip():
        common_name, unit = name.strip(), USER_UNIT
    else:
        raise ValueError("a client certificate needs a name")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return _issue(ca, now, subject, days, ExtendedKeyUsageOID.CLIENT_AUTH, None)


def validate_ae_title(ae_title: str) -> str:
    """The AE title without padding; raises ``ValueError`` unless PS3.5 allows it."""
    stripped = ae_title.strip(" ")
    if not stripped or len(ae_title) > _AE_TITLE_MAX:
        raise ValueError(f"an AE title has 1 to {_AE_TITLE_MAX} characters, not {len(stripped)}")
    if "\\" in stripped or not all(" " <= c <= "~" for c in stripped):
        raise ValueError("an AE title holds printable ASCII characters other than backslash")
    return stripped


def _issue(
    ca: CertificateAuthority,
    now: datetime,
    subject: x509.Name,
    days: int,
    usage: x509.ObjectIdentifier,
    sans: x509.SubjectAlternativeName | None,
) -> IssuedCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _base(subject, ca.cert.subject, key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    return IssuedCertificate(builder.sign(ca.key, hashes.SHA256()), key)


def _base(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, now: datetime, days: int
) -> x509.CertificateBuilder:
    if days < 1:
        raise ValueError(f"validity must be at least one day, not {days}")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- files ------------------------------------------------------------------------------


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` with mode 0600, replacing the file atomically; raises ``OSError``."""
    _write(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    """Write ``data`` with mode 0644, replacing the file atomically; raises ``OSError``."""
    _write(path, data, 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600, so a private key is never readable by others.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_certificate(path: Path) -> x509.Certificate:
    """Read one PEM certificate; raises ``ConfigError`` naming the file."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(Problem(path, f"not a readable PEM certificate: {exc}", expected="a PEM file")) from exc


def load_ca(cert_path: Path, key_path: Path) -> CertificateAuthority:
    """Read the site CA; raises ``ConfigError`` when a file is missing or does not match."""
    cert = load_certificate(cert_path)
    key = _load_private(key_path)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise ConfigError(Problem(key_path, f"is not the EC private key of {cert_path}"))
    return CertificateAuthority(cert, key)


def make_signing_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """Create an Ed25519 key (for audit tree heads and agreements) and write it 0600."""
    key = ed25519.Ed25519PrivateKey.generate()
    write_private(path, _private_pem(key))
    return key


def load_signing_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """Read the Ed25519 signing key; raises ``ConfigError`` naming the file."""
    key = _load_private(path)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(Problem(path, "is not an Ed25519 private key", expected="pacsguard pki init"))
    return key


def _load_private(path: Path) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        problem = Problem(path, f"not a readable unencrypted PEM private key: {exc}", expected="pacsguard pki init")
        raise ConfigError(problem) from exc
