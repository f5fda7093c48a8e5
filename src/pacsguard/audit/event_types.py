"""The documented, stable list of audit event types.

Names are dotted, lower case, and never change meaning once released: the monitor's
rules, the exports (DICOM PS3.15 A.5, FHIR AuditEvent) and auditors' queries depend on
them. A component may emit a type that is not listed; the log records it anyway and
marks it (``detail["_unknown_type"] = true``), so nothing is lost while the list
catches up.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["EVENT_TYPES", "is_known"]

_TYPES: dict[str, str] = {
    # authentication and sessions
    "login.success": "a principal authenticated (password, certificate, token or OIDC)",
    "login.failure": "an authentication attempt failed; detail.reason says why",
    "mfa.enrolled": "a principal enrolled a second factor (TOTP)",
    "mfa.failure": "a second factor was missing, wrong or replayed",
    "session.created": "a session was opened for a principal",
    "session.revoked": "a session was ended by the user, an officer or containment",
    "session.expired": "a session reached its idle or absolute timeout",
    "token.created": "an API token was issued",
    "token.revoked": "an API token was revoked",
    "token.rejected": "a presented session id, API token or JWT was refused",
    "password.changed": "a principal's password was changed or reset",
    # directory administration
    "principal.created": "a person, device, application or organisation was registered",
    "principal.updated": "a principal's attributes changed",
    "account.locked": "an account was locked (lockout policy or an officer)",
    "account.unlocked": "an account was unlocked",
    "account.disabled": "an account was disabled",
    "account.enabled": "an account was enabled again",
    "admin.role.grant": "a role was assigned to a principal in a zone",
    "admin.role.revoke": "a role assignment was revoked",
    "delegation.created": "a role holder delegated part of a role",
    "delegation.refused": "a delegation was refused (re-delegation, scope, validity)",
    "delegation.revoked": "a delegation was revoked",
    # policy, consent, break-glass
    "policy.reloaded": "the zone policies or agreements were reloaded",
    "consent.created": "a patient consent directive was recorded",
    "consent.revoked": "a patient consent directive was withdrawn",
    "break_glass.granted": "emergency access beyond authorisation was granted (reason recorded)",
    "break_glass.refused": "an emergency access request was refused",
    # data access
    "study.query": "a query (QIDO-RS, C-FIND) was answered",
    "study.read": "study data was retrieved (WADO-RS, C-GET, C-MOVE)",
    "study.store": "instances were stored (STOW-RS, C-STORE)",
    "study.delete": "study data was deleted",
    "study.export": "study data left the site (export, download archive)",
    "study.classify": "a study's sensitivity or zone was set or changed",
    "access.denied": "an access request was denied by policy",
    # share links
    "share.created": "a time-limited share link was created",
    "share.opened": "a share link was opened by its recipient",
    "share.revoked": "a share link was revoked",
    "share.expired": "a share link reached the end of its validity",
    # the audit log itself
    "audit.log.used": "the audit log was read (search, export, proof)",
    "audit.head.signed": "a signed tree head was made",
    "audit.pruned": "event rows of exported, verified segments were deleted (tree hashes kept)",
    # monitor and response
    "alert.raised": "a detection rule raised an alert",
    "incident.opened": "an incident was opened",
    "incident.updated": "an incident's state, owner or notes changed",
    "containment.account_locked": "containment locked an account",
    "containment.sessions_revoked": "containment revoked a principal's sessions",
    "containment.shares_expired": "containment expired share links",
    "containment.ip_blocked": "containment blocked a source address",
    "containment.mfa_reset": "containment reset a principal's second factor",
    "containment.device_suspended": "containment suspended a device (AE)",
    "containment.undone": "a containment action was undone",
    "containment.refused": "automatic containment was refused (it would lock out the last security officer)",
    # anything else
    "external.other": "an event reported by an external system",
    "external.rejected": "an external audit message was malformed or oversized and quarantined",
}

EVENT_TYPES: MappingProxyType[str, str] = MappingProxyType(_TYPES)
"""Every documented event type, with a one-line description."""


def is_known(event_type: str) -> bool:
    """True if ``event_type`` is in the documented list."""
    return event_type in _TYPES
