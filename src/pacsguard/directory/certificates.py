"""X.509 client certificates: verify one against the site CA (DICOM PS3.15 B.9, RFC 5280).

``ClientCertificateVerifier.verify`` is pure: it takes the certificate the TLS layer
received and ``now``, and returns what the directory needs to map it to a principal (the
SHA-256 fingerprint, the subject, and the AE title of a device certificate), or raises
``CertificateError`` with a stable ``reason`` for the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from pacsguard.clock import utc
from pacsguard.errors import CertificateError, ConfigError, Problem
from pacsguard.pki import DEVICE_UNIT, fingerprint

__all__ = ["ClientCertificateVerifier", "VerifiedCertificate"]

# The reasons ``CertificateError.reason`` takes; stable, they go into the audit log.
UNTRUSTED_ISSUER = "untrusted_issuer"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
NOT_CLIENT_AUTH = "not_client_auth"
MALFORMED = "malformed"


@dataclass(frozen=True)
class VerifiedCertificate:
    """A client certificate that chains to the site CA and is valid for client auth now.

    ``ae_title`` is set for device certificates (``OU=device``): it is their common name.
    """

    fingerprint: str
    subject: str
    common_name: str
    ae_title: str | None
    not_after: datetime


class ClientCertificateVerifier:
    """Verifies client certificates against one trust root, the site CA."""

    def __init__(self, ca_pem: bytes) -> None:
        """Trust the CA certificate(s) in ``ca_pem``; raises ``ConfigError`` if none parse."""
        try:
            self._roots = x509.load_pem_x509_certificates(ca_pem)
        except ValueError as exc:
            raise ConfigError(Problem("site CA", f"not a PEM certificate: {exc}", expected="pki/ca.pem")) from exc
        self._store = Store(self._roots)
        # The WebPKI end-entity profile, except that a client certificate need not carry
        # a subjectAltName: DICOM node certificates name their AE title in the subject.
        self._ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )

    def verify(self, cert: bytes, now: datetime) -> VerifiedCertificate:
        """Check ``cert`` (PEM or DER) at ``now``; raises ``CertificateError(reason)``."""
        leaf = _parse(cert)
        now = utc(now)
        self._check_explained(leaf, now)
        # The explicit checks above give stable reasons; cryptography's RFC 5280 path
        # validation is the authority, and catches anything they do not (key usage,
        # basic constraints, the CA's own validity, signature algorithm policy).
        try:
            self._verifier(now).verify(leaf, [])
        except VerificationError as exc:
            raise CertificateError(UNTRUSTED_ISSUER, f"certificate refused by path validation: {exc}") from exc
        return _describe(leaf)

    def _verifier(self, now: datetime) -> ClientVerifier:
        return (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=self._ee_policy)
            .build_client_verifier()
        )

    def _check_explained(self, leaf: x509.Certificate, now: datetime) -> None:
        """The failures worth a precise reason, in the order a reviewer would ask."""
        issuers = [root for root in self._roots if root.subject == leaf.issuer]
        if not issuers:
            raise CertificateError(UNTRUSTED_ISSUER, f"issued by {leaf.issuer.rfc4514_string()}, not the site CA")
        # A certificate from another CA that copies the site CA's name fails here.
        if not any(_signed_by(leaf, root) for root in issuers):
            raise CertificateError(BAD_SIGNATURE, "the signature does not verify with the site CA's key")
        if now < leaf.not_valid_before_utc:
            raise CertificateError(NOT_YET_VALID, f"valid only from {leaf.not_valid_before_utc.isoformat()}")
        if now > leaf.not_valid_after_utc:
            raise CertificateError(EXPIRED, f"expired at {leaf.not_valid_after_utc.isoformat()}")
        if ExtendedKeyUsageOID.CLIENT_AUTH not in _extended_key_usage(leaf):
            raise CertificateError(NOT_CLIENT_AUTH, "the certificate is not for TLS client authentication")


def _parse(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(MALFORMED, f"not an X.509 certificate: {exc}") from exc


def _signed_by(leaf: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(root)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _extended_key_usage(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        raise CertificateError(MALFORMED, f"unreadable extensions: {exc}") from exc


def _describe(cert: x509.Certificate) -> VerifiedCertificate:
    common_name = _attribute(cert.subject, NameOID.COMMON_NAME)
    unit = _attribute(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    return VerifiedCertificate(
        fingerprint=fingerprint(cert),
        subject=cert.subject.rfc4514_string(),
        common_name=common_name,
        ae_title=common_name if unit == DEVICE_UNIT and common_name else None,
        not_after=cert.not_valid_after_utc,
    )


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
