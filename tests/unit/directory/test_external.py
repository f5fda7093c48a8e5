"""Client certificates and OIDC bearer tokens mapped to directory principals."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import Engine

from pacsguard import pki
from pacsguard.clock import FakeClock
from pacsguard.config import AuthSettings, OidcSettings
from pacsguard.directory import (
    ClientCertificateVerifier,
    Device,
    Directory,
    OidcVerifier,
    Operator,
    PrincipalKind,
)
from pacsguard.directory.external import strength_from_claims
from pacsguard.domain import AuthStrength, Outcome, RecordingSink, ZoneTree
from pacsguard.errors import CertificateError, TokenError

OPERATOR = Operator("root")
ISSUER, AUDIENCE = "https://idp.example/realm", "pacsguard"
KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def ca(clock: FakeClock) -> pki.CertificateAuthority:
    return pki.create_ca(clock.now() - timedelta(days=1))


@pytest.fixture
def site_directory(
    engine: Engine, zones: ZoneTree, events: RecordingSink, clock: FakeClock, ca: pki.CertificateAuthority
) -> Directory:
    jwk = {**ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}
    oidc = OidcVerifier(OidcSettings(issuer=ISSUER, audience=AUDIENCE), {"keys": [jwk]})
    return Directory(
        engine,
        zones,
        AuthSettings(),
        events,
        clock,
        password_hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        certificates=ClientCertificateVerifier(ca.cert_pem()),
        oidc=oidc,
    )


def _register_ct(directory: Directory, cert: pki.IssuedCertificate) -> None:
    device = Device("CT_SCANNER_1", "10.0.0.7", cert.fingerprint)
    directory.principals.create(
        "ct-1", kind=PrincipalKind.DEVICE, display_name="CT 1", zone="north", by=OPERATOR, device=device
    )


def test_device_certificate_opens_a_strength_3_session(
    site_directory: Directory, ca: pki.CertificateAuthority, clock: FakeClock, events: RecordingSink
) -> None:
    cert = pki.issue_client(ca, clock.now() - timedelta(hours=1), "ct-1", ae_title="CT_SCANNER_1")
    _register_ct(site_directory, cert)
    issued = site_directory.external.login_certificate(cert.cert_pem())
    assert issued.session.principal_id == "ct-1"
    assert issued.session.auth_strength is AuthStrength.CERTIFICATE
    (success,) = events.of_type("login.success")
    assert success.actor.ae_title == "CT_SCANNER_1"
    assert success.detail["fingerprint"] == cert.fingerprint
    assert site_directory.sessions.validate(issued.secret).principal_id == "ct-1"


def test_unregistered_or_foreign_certificates_are_refused_and_reported(
    site_directory: Directory, ca: pki.CertificateAuthority, clock: FakeClock, events: RecordingSink
) -> None:
    unregistered = pki.issue_client(ca, clock.now() - timedelta(hours=1), "mr-9", ae_title="MR_9")
    with pytest.raises(CertificateError) as caught:
        site_directory.external.login_certificate(unregistered.cert_pem())
    assert caught.value.reason == "unknown_certificate"
    foreign_ca = pki.create_ca(clock.now() - timedelta(days=1))
    foreign = pki.issue_client(foreign_ca, clock.now() - timedelta(hours=1), "ct-1", ae_title="CT_SCANNER_1")
    _register_ct(site_directory, pki.issue_client(ca, clock.now() - timedelta(hours=1), "ct-1", ae_title="CT"))
    with pytest.raises(CertificateError) as caught:
        site_directory.external.login_certificate(foreign.cert_pem())
    assert caught.value.reason in {"untrusted_issuer", "bad_signature"}
    failures = events.of_type("login.failure")
    assert [f.detail["reason"] for f in failures] == ["unknown_certificate", caught.value.reason]
    assert all(f.outcome is Outcome.FAILURE for f in failures)


def test_a_locked_device_cannot_log_in_with_its_certificate(
    site_directory: Directory, ca: pki.CertificateAuthority, clock: FakeClock
) -> None:
    cert = pki.issue_client(ca, clock.now() - timedelta(hours=1), "ct-1", ae_title="CT_SCANNER_1")
    _register_ct(site_directory, cert)
    site_directory.principals.lock("ct-1", reason="stolen", by=OPERATOR)
    with pytest.raises(CertificateError) as caught:
        site_directory.external.login_certificate(cert.cert_pem())
    assert caught.value.reason == "account_locked"


def _token(clock: FakeClock, sub: str, **claims: object) -> str:
    now = int(clock.now().timestamp())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, KEY, algorithm="ES256", headers={"kid": "k1"})


def test_bearer_jwt_names_a_principal_with_the_issuers_strength(
    site_directory: Directory, clock: FakeClock, events: RecordingSink
) -> None:
    site_directory.principals.create("alice", kind=PrincipalKind.PERSON, display_name="A", zone="north", by=OPERATOR)
    identity = site_directory.external.bearer(_token(clock, "alice", amr=["pwd", "otp"]))
    assert identity.principal.id == "alice"
    assert identity.auth_strength is AuthStrength.TWO_FACTOR
    with pytest.raises(TokenError) as caught:
        site_directory.external.bearer(_token(clock, "mallory"))
    assert caught.value.reason == "unknown_principal"
    clock.advance(minutes=10)
    with pytest.raises(TokenError) as caught:
        site_directory.external.bearer(_token(clock, "alice", exp=int(clock.now().timestamp()) - 60))
    assert caught.value.reason == "expired"
    assert [e.detail["reason"] for e in events.of_type("token.rejected")] == ["unknown_principal", "expired"]


def test_strength_from_amr_claims() -> None:
    assert strength_from_claims({}) is AuthStrength.PASSWORD
    assert strength_from_claims({"amr": ["pwd"]}) is AuthStrength.PASSWORD
    assert strength_from_claims({"amr": ["pwd", "otp"]}) is AuthStrength.TWO_FACTOR
    assert strength_from_claims({"amr": ["hwk"]}) is AuthStrength.CERTIFICATE
    assert strength_from_claims({"amr": "hwk"}) is AuthStrength.PASSWORD
