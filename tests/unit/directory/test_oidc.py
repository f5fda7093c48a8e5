"""OIDC bearer JWTs: the tests make their own RSA, EC and Ed25519 keys and JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from pacsguard.clock import FakeClock
from pacsguard.config import OidcSettings
from pacsguard.directory.oidc import OidcVerifier, VerifiedToken
from pacsguard.errors import ConfigError, TokenError

ISSUER = "https://idp.hospital-a.example/realms/staff"
AUDIENCE = "pacsguard"
SETTINGS = OidcSettings(issuer=ISSUER, audience=AUDIENCE, leeway_seconds=30)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Signer:
    kid: str
    alg: str
    key: PrivateKey

    def jwk(self) -> dict[str, Any]:
        public = self.key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig"}


_KEYS: dict[str, PrivateKey] = {}


def _key(kind: str) -> PrivateKey:
    """Keys are made once per test session: RSA key generation is the slow part."""
    if kind not in _KEYS:
        makers: dict[str, Callable[[], PrivateKey]] = {
            "rsa": lambda: rsa.generate_private_key(65537, 2048),
            "rsa-other": lambda: rsa.generate_private_key(65537, 2048),
            "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
            "ed": ed25519.Ed25519PrivateKey.generate,
        }
        _KEYS[kind] = makers[kind]()
    return _KEYS[kind]


@pytest.fixture
def signers() -> dict[str, Signer]:
    return {
        "RS256": Signer("rsa-1", "RS256", _key("rsa")),
        "ES256": Signer("ec-1", "ES256", _key("ec")),
        "EdDSA": Signer("ed-1", "EdDSA", _key("ed")),
    }


@pytest.fixture
def verifier(signers: dict[str, Signer]) -> OidcVerifier:
    return OidcVerifier(SETTINGS, {"keys": [s.jwk() for s in signers.values()]})


def _claims(now: datetime, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@hospital-a",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(signer: Signer, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode(claims, signer.key, algorithm=signer.alg, headers={"kid": signer.kid, **header})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _reason(verifier: OidcVerifier, token: str, now: datetime) -> str:
    with pytest.raises(TokenError) as caught:
        verifier.verify(token, now)
    return caught.value.reason


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_good_token_is_accepted(verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock, alg: str) -> None:
    now = clock.now()
    verified = verifier.verify(_sign(signers[alg], _claims(now, groups=["radiology"])), now)
    assert isinstance(verified, VerifiedToken)
    assert (verified.subject, verified.issuer) == ("alice@hospital-a", ISSUER)
    assert verified.expires_at == now + timedelta(minutes=5)
    assert verified.claims["groups"] == ["radiology"]


def test_audience_may_be_a_list_that_contains_ours(
    verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock
) -> None:
    token = _sign(signers["ES256"], _claims(clock.now(), aud=["viewer", AUDIENCE]))
    assert verifier.verify(token, clock.now()).subject == "alice@hospital-a"


CLAIM_PROBLEMS: list[tuple[dict[str, Any], str]] = [
    ({"aud": "another-app"}, "wrong_audience"),
    ({"aud": None}, "wrong_audience"),
    ({"iss": "https://evil.example"}, "wrong_issuer"),
    ({"iss": None}, "wrong_issuer"),
    ({"sub": None}, "missing_subject"),
    ({"sub": ""}, "missing_subject"),
    ({"sub": 42}, "missing_subject"),
    ({"exp": None}, "malformed"),
    ({"exp": "tomorrow"}, "malformed"),
]


@pytest.mark.parametrize(("changes", "reason"), CLAIM_PROBLEMS)
def test_claims_are_checked(
    verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock, changes: dict[str, Any], reason: str
) -> None:
    token = _sign(signers["RS256"], _claims(clock.now(), **changes))
    assert _reason(verifier, token, clock.now()) == reason


def test_expiry_is_checked_against_now_with_leeway(
    verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock
) -> None:
    token = _sign(signers["ES256"], _claims(clock.now()))
    expiry = clock.now() + timedelta(minutes=5)
    assert verifier.verify(token, expiry + timedelta(seconds=29)).subject == "alice@hospital-a"
    assert _reason(verifier, token, expiry + timedelta(seconds=30)) == "expired"
    assert _reason(verifier, token, expiry + timedelta(days=1)) == "expired"


def test_not_before_and_issued_at_in_the_future(
    verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock
) -> None:
    later = int((clock.now() + timedelta(minutes=2)).timestamp())
    not_yet = _sign(signers["EdDSA"], _claims(clock.now(), nbf=later))
    assert _reason(verifier, not_yet, clock.now()) == "not_yet_valid"
    assert verifier.verify(not_yet, clock.now() + timedelta(minutes=2)).subject == "alice@hospital-a"
    from_the_future = _sign(signers["EdDSA"], _claims(clock.now(), iat=later))
    assert _reason(verifier, from_the_future, clock.now()) == "not_yet_valid"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(verifier: OidcVerifier, clock: FakeClock, alg: str) -> None:
    token = _unsigned({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, _claims(clock.now())) + "."
    assert _reason(verifier, token, clock.now()) == "bad_algorithm"


def test_hs256_signed_with_the_public_key_is_refused(
    verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock
) -> None:
    public_pem = (
        signers["RS256"]
        .key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, _claims(clock.now()))
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert _reason(verifier, f"{signing_input}.{_b64(mac)}", clock.now()) == "bad_algorithm"


def test_algorithm_outside_the_allow_list_is_refused(signers: dict[str, Signer], clock: FakeClock) -> None:
    only_ec = OidcVerifier(
        SETTINGS.model_copy(update={"algorithms": ("ES256",)}), {"keys": [s.jwk() for s in signers.values()]}
    )
    assert _reason(only_ec, _sign(signers["RS256"], _claims(clock.now())), clock.now()) == "bad_algorithm"
    assert only_ec.verify(_sign(signers["ES256"], _claims(clock.now())), clock.now()).subject == "alice@hospital-a"


def test_key_of_another_type_than_the_header_says_is_refused(
    verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock
) -> None:
    token = _sign(signers["ES256"], _claims(clock.now()), kid="rsa-1")
    assert _reason(verifier, token, clock.now()) == "bad_algorithm"


def test_unknown_kid_is_refused(verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock) -> None:
    token = _sign(signers["RS256"], _claims(clock.now()), kid="rotated-away")
    assert _reason(verifier, token, clock.now()) == "unknown_key"


def test_missing_kid_is_accepted_only_with_a_single_key(signers: dict[str, Signer], clock: FakeClock) -> None:
    single = OidcVerifier(SETTINGS, {"keys": [signers["ES256"].jwk()]})
    many = OidcVerifier(SETTINGS, {"keys": [s.jwk() for s in signers.values()]})
    token = jwt.encode(_claims(clock.now()), signers["ES256"].key, algorithm="ES256")
    assert single.verify(token, clock.now()).subject == "alice@hospital-a"
    assert _reason(many, token, clock.now()) == "unknown_key"


def test_tampered_payload_is_refused(verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock) -> None:
    header, _, signature = _sign(signers["RS256"], _claims(clock.now())).split(".")
    payload = _b64(json.dumps(_claims(clock.now(), sub="admin")).encode())
    assert _reason(verifier, f"{header}.{payload}.{signature}", clock.now()) == "bad_signature"


def test_token_signed_by_another_key_with_a_known_kid_is_refused(verifier: OidcVerifier, clock: FakeClock) -> None:
    impostor = Signer("rsa-1", "RS256", _key("rsa-other"))
    assert _reason(verifier, _sign(impostor, _claims(clock.now())), clock.now()) == "bad_signature"


def test_unknown_critical_header_extension_is_refused(
    verifier: OidcVerifier, signers: dict[str, Signer], clock: FakeClock
) -> None:
    token = _sign(signers["ES256"], _claims(clock.now()), crit=["exp-policy"], **{"exp-policy": "strict"})
    assert _reason(verifier, token, clock.now()) == "malformed"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.%%%.sig"])
def test_malformed_tokens(verifier: OidcVerifier, clock: FakeClock, token: str) -> None:
    assert _reason(verifier, token, clock.now()) == "malformed"


_EC_KEY = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "e"}
BAD_CONFIGURATIONS: list[tuple[OidcSettings, dict[str, Any] | None, str]] = [
    (SETTINGS.model_copy(update={"issuer": ""}), None, "OIDC is off"),
    (SETTINGS.model_copy(update={"audience": ""}), None, "needs an audience"),
    (SETTINGS.model_copy(update={"algorithms": ("RS256", "HS256")}), None, "HS256"),
    (SETTINGS.model_copy(update={"algorithms": ("none",)}), None, "none"),
    (SETTINGS, {"keys": []}, "no keys"),
    (SETTINGS, {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}, "RSA, EC or OKP"),
    (SETTINGS, {"keys": [_EC_KEY]}, "unusable key"),
]


@pytest.mark.parametrize(("settings", "jwks", "match"), BAD_CONFIGURATIONS)
def test_bad_configuration_is_refused(settings: OidcSettings, jwks: dict[str, Any] | None, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OidcVerifier(settings, jwks or {"keys": [Signer("ec-1", "ES256", _key("ec")).jwk()]})


def test_private_keys_in_the_jwks_are_refused() -> None:
    key = _key("ec")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    private = ECAlgorithm.to_jwk(key, as_dict=True)
    with pytest.raises(ConfigError, match="private key material"):
        OidcVerifier(SETTINGS, {"keys": [private]})


def test_from_file_loads_the_jwks_relative_to_the_site(
    tmp_path: Path, signers: dict[str, Signer], clock: FakeClock
) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "idp.jwks.json").write_text(json.dumps({"keys": [signers["EdDSA"].jwk()]}))
    settings = SETTINGS.model_copy(update={"jwks_file": "pki/idp.jwks.json"})
    verifier = OidcVerifier.from_file(settings, tmp_path)
    assert verifier.verify(_sign(signers["EdDSA"], _claims(clock.now())), clock.now()).subject == "alice@hospital-a"


def test_from_file_names_the_file_and_line_of_bad_json(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text('{"keys": [\n  {"kty": "EC",}\n]}')
    with pytest.raises(ConfigError) as caught:
        OidcVerifier.from_file(SETTINGS.model_copy(update={"jwks_file": "jwks.json"}), tmp_path)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line) == (tmp_path / "jwks.json", 2)


def test_from_file_without_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no JWKS file"):
        OidcVerifier.from_file(SETTINGS, tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        OidcVerifier.from_file(SETTINGS.model_copy(update={"jwks_file": "missing.json"}), tmp_path)
