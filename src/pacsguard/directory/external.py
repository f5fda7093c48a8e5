"""Logging in with credentials another party vouches for: a client certificate from the
site CA (devices, and users with hardware keys) and a bearer JWT from the OIDC issuer.

The verifiers (``certificates``, ``oidc``) are pure; this module maps what they verified
to a principal, checks the account state and reports every outcome: ``login.success`` /
``login.failure`` (``detail.method`` = ``certificate``) for certificates, which open a
session of strength 3, and ``token.rejected`` (``detail.kind`` = ``oidc``) for refused
JWTs. An accepted JWT opens no session: it is checked on every request, and the request's
own event names the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from pacsguard.directory._common import Deps, event
from pacsguard.directory.certificates import ClientCertificateVerifier, VerifiedCertificate
from pacsguard.directory.model import Client, IssuedSession, Principal
from pacsguard.directory.oidc import OidcVerifier
from pacsguard.directory.principals import to_principal
from pacsguard.directory.sessions import Sessions, blocked_account
from pacsguard.domain import Actor, AuthStrength, Outcome
from pacsguard.errors import AuthenticationError, CertificateError, TokenError
from pacsguard.storage.directory_tables import principals as tp

__all__ = ["BearerIdentity", "ExternalLogin", "strength_from_claims"]


@dataclass(frozen=True, slots=True)
class BearerIdentity:
    """The principal an accepted JWT names, and how strongly the issuer authenticated it."""

    principal: Principal
    auth_strength: AuthStrength
    issuer: str


class ExternalLogin:
    """Certificate logins and OIDC bearer tokens, mapped to directory principals."""

    def __init__(
        self,
        deps: Deps,
        sessions: Sessions,
        certificates: ClientCertificateVerifier | None = None,
        oidc: OidcVerifier | None = None,
    ) -> None:
        self._d = deps
        self._sessions = sessions
        self._certificates = certificates
        self._oidc = oidc

    def login_certificate(self, certificate: bytes, client: Client | None = None) -> IssuedSession:
        """Verify a client certificate against the site CA and open a strength-3 session
        for the principal registered with its fingerprint, else with its subject.

        Raises ``CertificateError`` (the verifier's reasons, ``unknown_certificate``,
        ``not_configured``, ``account_locked``, ``account_disabled``).
        """
        client = client or Client()
        if self._certificates is None:
            raise self._cert_failure(CertificateError("not_configured", "client certificates are not set up"), client)
        try:
            verified = self._certificates.verify(certificate, self._d.now())
            principal = self._principal_for(verified)
        except CertificateError as exc:
            raise self._cert_failure(exc, client) from exc
        issued = self._sessions.create(principal.id, AuthStrength.CERTIFICATE, client)
        actor = Actor(
            principal_id=principal.id,
            session_id=issued.session.id,
            ip=client.ip,
            device_id=client.device_id or verified.fingerprint,
            user_agent=client.user_agent,
            ae_title=verified.ae_title,
            auth_strength=int(AuthStrength.CERTIFICATE),
        )
        detail = {"method": "certificate", "fingerprint": verified.fingerprint, "auth_strength": 3}
        self._d.events.emit(event("login.success", self._d.now(), actor, target=principal.id, detail=detail))
        return issued

    def bearer(self, token: str, client: Client | None = None) -> BearerIdentity:
        """Check an OIDC bearer JWT and return the principal named by its subject claim
        (the principal id equals the claim). Raises ``TokenError``."""
        client = client or Client()
        try:
            if self._oidc is None:
                raise TokenError("not_configured", "OIDC is not set up on this site")
            verified = self._oidc.verify(token, self._d.now())
            principal = self._active(verified.subject, TokenError)
        except TokenError as exc:
            self._reject(exc, client)
            raise
        return BearerIdentity(principal, strength_from_claims(verified.claims), verified.issuer)

    def _principal_for(self, verified: VerifiedCertificate) -> Principal:
        with self._d.engine.connect() as conn:
            row = conn.execute(select(tp).where(tp.c.cert_fingerprint == verified.fingerprint)).first()
            if row is None:
                row = conn.execute(select(tp).where(tp.c.cert_subject == verified.subject)).first()
        if row is None:
            raise CertificateError("unknown_certificate", "no principal is registered with this certificate")
        return self._active(row.id, CertificateError)

    def _active(self, principal_id: str, error: type[AuthenticationError]) -> Principal:
        with self._d.engine.connect() as conn:
            row = conn.execute(select(tp).where(tp.c.id == principal_id)).first()
        # An automatic lockout stops password guessing only; an officer's lock or a
        # disabled account stops every way in.
        reason = blocked_account(row, self._d.now())
        if row is None or reason is not None:
            raise error(reason or "unknown_principal", "this identity may not log in")
        return to_principal(row)

    def _cert_failure(self, exc: CertificateError, client: Client) -> CertificateError:
        actor = Actor(ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)
        detail: dict[str, Any] = {"method": "certificate", "reason": exc.reason}
        self._d.events.emit(event("login.failure", self._d.now(), actor, outcome=Outcome.FAILURE, detail=detail))
        return exc

    def _reject(self, exc: TokenError, client: Client) -> None:
        actor = Actor(ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)
        detail = {"kind": "oidc", "reason": exc.reason}
        self._d.events.emit(event("token.rejected", self._d.now(), actor, outcome=Outcome.FAILURE, detail=detail))


def strength_from_claims(claims: dict[str, Any]) -> AuthStrength:
    """RFC 8176 ``amr`` values: a hardware key counts 3, any second factor 2, else 1."""
    amr = claims.get("amr")
    methods = {str(m) for m in amr} if isinstance(amr, list) else set()
    if methods & {"hwk", "sc", "swk"}:
        return AuthStrength.CERTIFICATE
    if methods & {"mfa", "otp", "sms", "fpt", "face"} or len(methods) > 1:
        return AuthStrength.TWO_FACTOR
    return AuthStrength.PASSWORD
