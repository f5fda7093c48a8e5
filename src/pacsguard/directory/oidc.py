"""OIDC bearer JWTs: verify a token from the configured issuer against its JWKS.

RFC 7519 (JWT), RFC 7517 (JWK), RFC 8725 (JWT best current practice: an explicit
algorithm allow-list, never ``none``, never an HMAC keyed with a public key).
``OidcVerifier.verify`` is pure: it takes the token and ``now``, and returns the subject
the directory maps to a principal, or raises ``TokenError`` with a stable ``reason``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from jwt.exceptions import InvalidSubjectError

from pacsguard.clock import utc
from pacsguard.config import OidcSettings
from pacsguard.errors import ConfigError, Problem, TokenError

__all__ = ["OidcVerifier", "VerifiedToken"]

# The reasons ``TokenError.reason`` takes; stable, they go into the audit log.
MALFORMED = "malformed"
BAD_ALGORITHM = "bad_algorithm"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
WRONG_ISSUER = "wrong_issuer"
WRONG_AUDIENCE = "wrong_audience"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
MISSING_SUBJECT = "missing_subject"

# Asymmetric signatures only: an HMAC "verified" with a key from a JWKS would accept any
# token signed with that (public) key as the secret.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


@dataclass(frozen=True)
class VerifiedToken:
    """A JWT whose signature, issuer, audience and validity period all check out."""

    subject: str
    issuer: str
    claims: dict[str, Any] = field(hash=False)
    expires_at: datetime


class OidcVerifier:
    """Verifies bearer JWTs of one OIDC issuer with the keys of its JWKS.

    PyJWT checks the signature, the algorithm, ``iss``, ``aud`` and the type of ``sub``.
    It reads the wall clock for ``exp``, ``nbf`` and ``iat`` and cannot be given a time,
    so those checks are switched off in PyJWT and done here against the ``now`` passed
    to ``verify``, with the configured leeway (the same comparisons PyJWT makes).
    """

    def __init__(self, settings: OidcSettings, jwks: Mapping[str, Any], *, source: str = "JWKS") -> None:
        """Raises ``ConfigError`` if OIDC is off, or the algorithms or the JWKS are unusable."""
        self._settings = settings
        self._algorithms = _allowed_algorithms(settings)
        self._keys = _index_keys(jwks, source)

    @classmethod
    def from_file(cls, settings: OidcSettings, site_dir: Path) -> OidcVerifier:
        """Load ``settings.jwks_file`` (relative to ``site_dir``); raises ``ConfigError``."""
        if not settings.jwks_file:
            raise ConfigError(Problem("pacsguard.toml", "no JWKS file given", key="auth.oidc.jwks_file"))
        path = Path(settings.jwks_file)
        path = path if path.is_absolute() else site_dir / path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(Problem(path, f"cannot read the JWKS: {exc.strerror}")) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
            raise ConfigError(Problem(path, f"not valid JSON: {exc}", line, expected="a JWKS")) from exc
        if not isinstance(data, Mapping):
            raise ConfigError(Problem(path, "not a JWKS", expected='an object with "keys"'))
        return cls(settings, data, source=str(path))

    def verify(self, token: str, now: datetime) -> VerifiedToken:
        """Verify ``token`` at ``now``; raises ``TokenError(reason)``."""
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise TokenError(BAD_ALGORITHM, f"algorithm {alg!r} is not accepted")
        key = self._key(header.get("kid"), alg)
        claims = self._decode(token, key, alg)
        expires_at = self._check_times(claims, utc(now))
        subject = claims.get(self._settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise TokenError(MISSING_SUBJECT, f"claim {self._settings.subject_claim!r} is missing or empty")
        return VerifiedToken(subject=subject, issuer=claims["iss"], claims=claims, expires_at=expires_at)

    def _key(self, kid: object, alg: str) -> jwt.PyJWK:
        if kid is None and len(self._keys) == 1:
            jwk = next(iter(self._keys.values()))
        elif isinstance(kid, str) and kid in self._keys:
            jwk = self._keys[kid]
        else:
            raise TokenError(UNKNOWN_KEY, f"no key {kid!r} in the issuer's JWKS")
        if jwk.get("alg", alg) != alg:
            raise TokenError(BAD_ALGORITHM, f"key {kid!r} is for {jwk['alg']}, the token says {alg}")
        try:
            return jwt.PyJWK(dict(jwk), algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError) as exc:
            raise TokenError(BAD_ALGORITHM, f"key {kid!r} cannot verify {alg}: {exc}") from exc

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["iss", "aud", "exp"],
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenError(_reason(exc), str(exc)) from exc
        if not isinstance(claims, dict):
            raise TokenError(MALFORMED, "the payload is not a JSON object")
        return claims

    def _check_times(self, claims: Mapping[str, Any], now: datetime) -> datetime:
        """RFC 7519 4.1.4-4.1.6 against ``now``; returns the expiry time."""
        leeway = self._settings.leeway_seconds
        at = now.timestamp()
        exp = _numeric(claims, "exp")
        if exp is None:
            raise TokenError(MALFORMED, "the token has no expiry")
        if exp <= at - leeway:
            raise TokenError(EXPIRED, f"expired at {_when(exp)}")
        nbf = _numeric(claims, "nbf")
        if nbf is not None and nbf > at + leeway:
            raise TokenError(NOT_YET_VALID, f"valid only from {_when(nbf)}")
        iat = _numeric(claims, "iat")
        if iat is not None and iat > at + leeway:
            raise TokenError(NOT_YET_VALID, f"issued in the future, at {_when(iat)}")
        return datetime.fromtimestamp(exp, UTC)


def _allowed_algorithms(settings: OidcSettings) -> frozenset[str]:
    where = "pacsguard.toml"
    if not settings.issuer:
        raise ConfigError(Problem(where, "OIDC is off: no issuer", key="auth.oidc.issuer"))
    if not settings.audience:
        raise ConfigError(Problem(where, "an OIDC issuer needs an audience", key="auth.oidc.audience"))
    refused = [a for a in settings.algorithms if a not in SUPPORTED_ALGORITHMS]
    if refused or not settings.algorithms:
        expected = "some of " + ", ".join(sorted(SUPPORTED_ALGORITHMS))
        message = f"algorithms not accepted: {', '.join(refused) or '(none given)'}"
        raise ConfigError(Problem(where, message, key="auth.oidc.algorithms", expected=expected))
    return frozenset(settings.algorithms)


def _index_keys(jwks: Mapping[str, Any], source: str) -> dict[str | None, Mapping[str, Any]]:
    """The usable signature keys by ``kid``; raises ``ConfigError`` for anything dubious."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ConfigError(Problem(source, "no keys", key="keys", expected="a non-empty list of JWKs"))
    index: dict[str | None, Mapping[str, Any]] = {}
    for i, jwk in enumerate(keys):
        where = f"keys[{i}]"
        if not isinstance(jwk, Mapping) or jwk.get("kty") not in _ASYMMETRIC_KEY_TYPES:
            raise ConfigError(Problem(source, "not a public RSA, EC or OKP key", key=where, expected="kty RSA/EC/OKP"))
        if "d" in jwk:
            raise ConfigError(Problem(source, "holds private key material; publish the public key only", key=where))
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            jwt.PyJWK(dict(jwk))
        except (jwt.PyJWKError, jwt.InvalidKeyError) as exc:
            raise ConfigError(Problem(source, f"unusable key: {exc}", key=where)) from exc
        kid = jwk.get("kid")
        if kid in index:
            raise ConfigError(Problem(source, f"duplicate kid {kid!r}", key=where, expected="unique key ids"))
        index[kid if isinstance(kid, str) else None] = jwk
    return index


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise TokenError(MALFORMED, f"not a JWT: {exc}") from exc


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return {"iss": WRONG_ISSUER, "aud": WRONG_AUDIENCE}.get(exc.claim, MALFORMED)
    reasons: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.InvalidSignatureError, BAD_SIGNATURE),  # before DecodeError, its base class
        (jwt.InvalidAlgorithmError, BAD_ALGORITHM),
        (jwt.InvalidKeyError, BAD_ALGORITHM),
        (jwt.InvalidIssuerError, WRONG_ISSUER),
        (jwt.InvalidAudienceError, WRONG_AUDIENCE),
        (InvalidSubjectError, MISSING_SUBJECT),
    ]
    return next((reason for kind, reason in reasons if isinstance(exc, kind)), MALFORMED)


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(MALFORMED, f"claim {name!r} is not a NumericDate")
    return float(value)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()
