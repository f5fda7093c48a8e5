"""The exception tree. Every error pacsguard raises on purpose derives from one root.

Denials are values (``Decision``), not exceptions; these are failures. Each edge (HTTP,
DIMSE, CLI) turns them into a status in exactly one place.

    PacsguardError
    ├── ConfigError                 a site file is wrong (file, line, key, expected)
    ├── StorageError                the database refused or is unreachable
    ├── DirectoryError
    │   ├── NotFound                no such principal, role, zone, assignment, session
    │   ├── AlreadyExists
    │   ├── AttestationRefused      assigning a role without the attestation right
    │   ├── DelegationRefused       re-delegation, subset violation, expired source
    │   ├── InvalidEntry            a malformed id, AE title, fingerprint, scope, period
    │   └── WeakPassword            a new password breaks the site's password policy
    ├── AuthenticationError         (reason: a stable, auditable code)
    │   ├── InvalidCredentials
    │   ├── AccountLocked
    │   ├── MfaError
    │   ├── TokenError
    │   └── CertificateError
    ├── PolicyError
    │   └── PolicyFinding           policy test cases failed, or a policy diff found changes
    ├── AuditError
    │   ├── AuditIntegrityError
    │   ├── AuditUnavailable
    │   ├── AuditExportError        an export input or option is unusable
    │   └── AuditTransportError     the Audit Record Repository cannot be reached
    ├── ArchiveError
    │   ├── ArchiveUnavailable      the upstream archive is down or answered an error
    │   ├── ArchiveQueryError       a QIDO query is malformed (key: the bad parameter)
    │   ├── ArchiveNotFound         no such study, series or instance
    │   └── ArchiveIntegrityError   a stored file fails authentication (altered, swapped)
    ├── GatewayError
    │   ├── BadRequest              a client's request is malformed (HTTP 400)
    │   ├── Forbidden               the caller is known but may not do this (HTTP 403)
    │   ├── RequestTooLarge         a request body over the site's cap (HTTP 413)
    │   └── ShareRefused            a share link cannot be opened (one answer for every reason)
    ├── MonitorError
    │   ├── GeoDatabaseError        the GeoIP (.mmdb) file cannot be read
    │   ├── SnapshotError           a monitor checkpoint does not fit these rules
    │   ├── ContainmentError        a containment action cannot run (unknown target, no right)
    │   │   └── ContainmentRefused  automatic containment would lock the last security officer
    │   └── IncidentError           an incident or alert change that cannot be made (HTTP 400)
    │       └── IncidentConflict    an illegal state change, a step done already (HTTP 409)
    └── IngestError                 an external audit source could not be taken in
        ├── MessageRejected         one external audit message is malformed (reason: a stable code)
        └── ParserDied              a receiver's parsing process died or hung (it is restarted)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PacsguardError(Exception):
    """Root of every error pacsguard raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a site file, located as precisely as the format allows."""

    file: Path | str
    message: str
    line: int | None = None
    key: str | None = None
    expected: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        key = f" [{self.key}]" if self.key else ""
        expected = f" (expected {self.expected})" if self.expected else ""
        return f"{where}{key}: {self.message}{expected}"


class ConfigError(PacsguardError):
    """A site file is malformed; carries every problem found, not only the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("\n".join(str(p) for p in self.problems))


class StorageError(PacsguardError):
    """The database refused an operation or cannot be reached."""


class DirectoryError(PacsguardError):
    """A directory operation was refused."""


class NotFound(DirectoryError):
    """No such principal, role, zone, assignment or session."""

    exit_code = 2


class AlreadyExists(DirectoryError):
    """The principal, assignment or other entry exists already."""

    exit_code = 2


class AttestationRefused(DirectoryError):
    """The assigner lacks the attestation right for that role in that zone."""


class DelegationRefused(DirectoryError):
    """The delegation is not allowed (re-delegation, wider than the source, expired)."""


class InvalidEntry(DirectoryError):
    """A directory entry is malformed: id, AE title, fingerprint, scope or period."""

    exit_code = 2


class WeakPassword(DirectoryError):
    """A new password breaks the password policy; ``problems`` says every rule it breaks."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("password refused: " + "; ".join(problems))


class AuthenticationError(PacsguardError):
    """Authentication failed; ``reason`` is a stable code that goes into the audit log."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason)


class InvalidCredentials(AuthenticationError):
    """Unknown user or wrong password (deliberately indistinguishable)."""


class AccountLocked(AuthenticationError):
    """The account is locked, temporarily or by an officer."""


class MfaError(AuthenticationError):
    """A second factor was missing, wrong or replayed."""


class TokenError(AuthenticationError):
    """A session id, API token or JWT is invalid, expired or revoked."""


class CertificateError(AuthenticationError):
    """A client certificate does not chain to the site CA or maps to no device."""


class PolicyError(PacsguardError):
    """The decision point could not be built or used."""


class PolicyFinding(PolicyError):
    """A finding, not a failure: policy test cases failed or decisions would change (exit 1)."""


class AuditError(PacsguardError):
    """The audit log failed."""


class AuditIntegrityError(AuditError):
    """The audit log does not verify: something was altered, removed or inserted."""


class AuditUnavailable(AuditError):
    """The audit log cannot take an event; callers that need a record must refuse."""


class AuditExportError(AuditError):
    """An export could not read its input (bad JSONL, bad bounds); names file and line."""

    exit_code = 2


class AuditTransportError(AuditError):
    """Audit records could not be delivered to the Audit Record Repository (they stay spooled)."""


class ArchiveError(PacsguardError):
    """An upstream archive failed or answered something unusable."""


class ArchiveUnavailable(ArchiveError):
    """The upstream archive cannot be reached or answered with a server error."""


class ArchiveQueryError(ArchiveError):
    """A QIDO query is malformed; ``key`` names the offending parameter."""

    exit_code = 2

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"query parameter {key!r}: {message}")


class ArchiveNotFound(ArchiveError):
    """The archive holds no such study, series or instance."""


class ArchiveIntegrityError(ArchiveError):
    """A stored instance file does not authenticate: it was altered or swapped."""


class GatewayError(PacsguardError):
    """A client's request to the gateway cannot be served as sent."""


class BadRequest(GatewayError):
    """The request is malformed: bad path, header, multipart body or DICOM part."""


class Forbidden(GatewayError):
    """The caller is authenticated but lacks the right (an officer-only API, say). Never
    used where the answer would reveal that a study exists: those get a 404."""


class RequestTooLarge(GatewayError):
    """The request body is bigger than the gateway accepts; ``limit`` is the cap in bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body exceeds the limit of {limit} bytes")


class ShareRefused(GatewayError):
    """A share link cannot be opened: unknown, malformed, expired, revoked, used up, locked
    or contained. ``reason`` goes into the audit log only; the recipient always gets the
    same answer, so a token's state is never revealed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__("this link cannot be opened")


class MonitorError(PacsguardError):
    """The monitor could not load its rules or process events."""


class GeoDatabaseError(MonitorError):
    """The site's MaxMind-format GeoIP file is missing or not a MaxMind database."""

    exit_code = 2

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: not a usable GeoIP (MaxMind .mmdb) database: {reason}")


class SnapshotError(MonitorError):
    """A monitor state snapshot is malformed or from an incompatible version."""


class ContainmentError(MonitorError):
    """A containment action cannot run: unknown action or target, or no right to undo it."""


class ContainmentRefused(ContainmentError):
    """Automatic containment refused: it would lock out the last active security officer."""


class IncidentError(MonitorError):
    """An incident or alert change that cannot be made: an owner who is not an officer,
    a malformed paging cursor."""

    exit_code = 2


class IncidentConflict(IncidentError):
    """The change conflicts with the incident's state: an illegal transition (resolved is
    final, states only move forward), a checklist step done already."""


class IngestError(PacsguardError):
    """An external audit source (ATNA receiver, import file) could not be taken in."""


class MessageRejected(IngestError):
    """One external audit message is unusable; ``reason`` is a stable code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ParserDied(IngestError):
    """A parsing process of the receiver ended or stopped answering before it gave a
    batch's results (the receiver restarts it and parses that batch again)."""
