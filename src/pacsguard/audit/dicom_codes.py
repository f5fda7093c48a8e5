"""pacsguard event types mapped onto DICOM PS3.15 A.5 audit messages.

Every dotted event type pacsguard emits has one row in ``EVENT_MAPPINGS``: the A.5.3
message it becomes (EventID), the EventActionCode (C/R/U/D/E), the EventTypeCode(s) and
which participant objects it carries. Code values are those of PS3.16 (CID 400 Audit
Event ID, CID 401 Audit Event Type Code, CID 402 Audit Active Participant Role ID Code,
CID 404 Audit Participant Object ID Type Code) and of the PS3.15 A.5.1.2 value sets.

Events with no DICOM equivalent (``dicom_equivalent=False``) are still exported: as a
Security Alert (110113) or an Application Activity (110100) whose EventTypeCode is
pacsguard's own, in the private coding scheme ``99PACSGUARD`` (PS3.3 8.2: coding scheme
designators beginning with "99" are private) with the dotted event type as the code value. An event
type that is not in the table at all (say, a newer component's) is exported the same way
as ``external.other``.

No pacsguard event becomes an Order Record (110109) or a Procedure Record (110111):
pacsguard never creates or changes orders or procedures.

Extensions to A.5.3, as A.5 asks a conformance statement to list them:

- Security Alerts about studies (break-glass, classification, denials, share links) also
  name the patient (type 1, role 1) and the study (type 2, role 3, ID type 110180).
- Every message carries ``EventOutcomeDescription`` with the pacsguard event type and seq.
- A ``session.expired`` logout has pacsguard, not the user, as requestor (the logout timer
  case that A.5.3.12 describes).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pacsguard.domain import Outcome

__all__ = [
    "AUDIT_SOURCE_TYPE_APPLICATION_SERVER",
    "EVENT_MAPPINGS",
    "PRIVATE_SCHEME",
    "Code",
    "EventId",
    "EventMapping",
    "IdType",
    "ObjectKind",
    "Role",
    "Type",
    "mapping_for",
    "outcome_indicator",
]

PRIVATE_SCHEME = "99PACSGUARD"
AUDIT_SOURCE_TYPE_APPLICATION_SERVER = "4"  # PS3.15 A.5.1.2.1: application server process


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: code, coding scheme (codeSystemName) and meaning (displayName)."""

    code: str
    scheme: str
    meaning: str


def _dcm(code: str, meaning: str) -> Code:
    return Code(code, "DCM", meaning)


class EventId:
    """PS3.16 CID 400 Audit Event ID."""

    APPLICATION_ACTIVITY = _dcm("110100", "Application Activity")
    AUDIT_LOG_USED = _dcm("110101", "Audit Log Used")
    BEGIN_TRANSFERRING = _dcm("110102", "Begin Transferring DICOM Instances")
    INSTANCES_ACCESSED = _dcm("110103", "DICOM Instances Accessed")
    INSTANCES_TRANSFERRED = _dcm("110104", "DICOM Instances Transferred")
    STUDY_DELETED = _dcm("110105", "DICOM Study Deleted")
    EXPORT = _dcm("110106", "Export")
    ORDER_RECORD = _dcm("110109", "Order Record")
    PATIENT_RECORD = _dcm("110110", "Patient Record")
    QUERY = _dcm("110112", "Query")
    SECURITY_ALERT = _dcm("110113", "Security Alert")
    USER_AUTHENTICATION = _dcm("110114", "User Authentication")


class Type:
    """PS3.16 CID 401 Audit Event Type Code (the subset pacsguard uses)."""

    LOGIN = _dcm("110122", "Login")
    LOGOUT = _dcm("110123", "Logout")
    NODE_AUTHENTICATION = _dcm("110126", "Node Authentication")
    EMERGENCY_OVERRIDE_STARTED = _dcm("110127", "Emergency Override Started")
    NETWORK_CONFIGURATION = _dcm("110128", "Network Configuration")
    SECURITY_CONFIGURATION = _dcm("110129", "Security Configuration")
    USE_OF_RESTRICTED_FUNCTION = _dcm("110132", "Use of Restricted Function")
    OBJECT_SECURITY_ATTRIBUTES_CHANGED = _dcm("110135", "Object Security Attributes Changed")
    SECURITY_ROLES_CHANGED = _dcm("110136", "Security Roles Changed")
    USER_SECURITY_ATTRIBUTES_CHANGED = _dcm("110137", "User Security Attributes Changed")
    EMERGENCY_OVERRIDE_STOPPED = _dcm("110138", "Emergency Override Stopped")


class Role:
    """PS3.16 CID 402 Audit Active Participant Role ID Code."""

    APPLICATION = _dcm("110150", "Application")
    DESTINATION = _dcm("110152", "Destination Role ID")
    SOURCE = _dcm("110153", "Source Role ID")


class IdType:
    """Participant Object ID Type Codes: PS3.15 A.5.1.2.4 (RFC-3881) and PS3.16 CID 404."""

    PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")
    USER_IDENTIFIER = Code("11", "RFC-3881", "User Identifier")
    URI = Code("12", "RFC-3881", "URI")
    STUDY_INSTANCE_UID = _dcm("110180", "Study Instance UID")
    SOP_CLASS_UID = _dcm("110181", "SOP Class UID")
    NODE_ID = _dcm("110182", "Node ID")


class ObjectKind(StrEnum):
    """Which participant objects a message carries, taken from the event's ``objects``."""

    PATIENT = "patient"  # type 1 person, role 1 patient, ID type 2 patient number
    STUDY = "study"  # type 2 system object, role 3 report, ID type 110180
    QUERY = "query"  # type 2, role 3, ID type 110181 with ParticipantObjectQuery
    AUDIT_LOG = "audit_log"  # type 2, role 13 security resource, ID type 12 URI
    # Security Alert subjects (A.5.3.11): type 2, role 13, with an "Alert Description" detail.
    USER = "user"  # ID type 12 URI: urn:pacsguard:principal:<target, else the actor>
    RESOURCE = "resource"  # ID type 12 URI: detail "resource", else the zone, else the event
    NODE = "node"  # ID type 110182 Node ID: detail "ip"/"device_id", else the actor's


@dataclass(frozen=True, slots=True)
class EventMapping:
    """One pacsguard event type as a PS3.15 A.5.3 audit message."""

    event_id: Code
    action: str  # EventActionCode: C, R, U, D or E
    type_codes: tuple[Code, ...] = ()
    objects: tuple[ObjectKind, ...] = ()
    dicom_equivalent: bool = True


_A = EventId
_PATIENT_STUDY = (ObjectKind.PATIENT, ObjectKind.STUDY)


def _auth(type_code: Code) -> EventMapping:
    return EventMapping(_A.USER_AUTHENTICATION, "E", (type_code,))


def _alert(type_code: Code, action: str = "U", *objects: ObjectKind) -> EventMapping:
    return EventMapping(_A.SECURITY_ALERT, action, (type_code,), objects or (ObjectKind.USER,))


def _private(name: str, base: Code = _A.SECURITY_ALERT, *objects: ObjectKind) -> EventMapping:
    return EventMapping(base, "E", (Code(name, PRIVATE_SCHEME, name),), objects, dicom_equivalent=False)


_USER_ATTRS = Type.USER_SECURITY_ATTRIBUTES_CHANGED
_ROLES = Type.SECURITY_ROLES_CHANGED
_OBJECT_ATTRS = Type.OBJECT_SECURITY_ATTRIBUTES_CHANGED
_SHARE = (ObjectKind.PATIENT, ObjectKind.STUDY)

EVENT_MAPPINGS: dict[str, EventMapping] = {
    # Authentication and sessions: User Authentication (A.5.3.12), Login/Logout.
    "login.success": _auth(Type.LOGIN),
    "login.failure": _auth(Type.LOGIN),
    "mfa.failure": _auth(Type.LOGIN),
    "session.created": _auth(Type.LOGIN),
    "session.revoked": _auth(Type.LOGOUT),
    "session.expired": _auth(Type.LOGOUT),
    "token.rejected": _auth(Type.LOGIN),
    # Credentials and accounts: Security Alert (A.5.3.11), user security attributes.
    "mfa.enrolled": _alert(_USER_ATTRS),
    "token.created": _alert(_USER_ATTRS, "C"),
    "token.revoked": _alert(_USER_ATTRS),
    "password.changed": _alert(_USER_ATTRS),
    "principal.created": _alert(_USER_ATTRS, "C"),
    "principal.updated": _alert(_USER_ATTRS),
    "account.locked": _alert(_USER_ATTRS),
    "account.unlocked": _alert(_USER_ATTRS),
    "account.disabled": _alert(_USER_ATTRS),
    "account.enabled": _alert(_USER_ATTRS),
    # Roles and delegations: Security Alert, security roles changed.
    "admin.role.grant": _alert(_ROLES),
    "admin.role.revoke": _alert(_ROLES),
    "delegation.created": _alert(_ROLES, "C"),
    "delegation.refused": _alert(_ROLES, "C"),
    "delegation.revoked": _alert(_ROLES),
    "policy.reloaded": _alert(Type.SECURITY_CONFIGURATION, "U", ObjectKind.RESOURCE),
    # Consent is part of the patient's record: Patient Record (A.5.3.9).
    "consent.created": EventMapping(_A.PATIENT_RECORD, "C", (), (ObjectKind.PATIENT,)),
    "consent.revoked": EventMapping(_A.PATIENT_RECORD, "U", (), (ObjectKind.PATIENT,)),
    # Break-glass: Security Alert, emergency override started.
    "break_glass.granted": _alert(Type.EMERGENCY_OVERRIDE_STARTED, "E", *_PATIENT_STUDY),
    "break_glass.refused": _alert(Type.EMERGENCY_OVERRIDE_STARTED, "E", *_PATIENT_STUDY),
    # Image data.
    "study.query": EventMapping(_A.QUERY, "E", (), (ObjectKind.QUERY,)),
    "study.read": EventMapping(_A.INSTANCES_ACCESSED, "R", (), _PATIENT_STUDY),
    "study.store": EventMapping(_A.INSTANCES_TRANSFERRED, "C", (), _PATIENT_STUDY),
    "study.delete": EventMapping(_A.STUDY_DELETED, "D", (), _PATIENT_STUDY),
    "study.export": EventMapping(_A.EXPORT, "R", (), _PATIENT_STUDY),
    "study.classify": _alert(_OBJECT_ATTRS, "U", *_PATIENT_STUDY),
    "access.denied": _alert(Type.USE_OF_RESTRICTED_FUNCTION, "E", *_PATIENT_STUDY),
    # Share links: changing who may see a study is an object security attribute change;
    # a recipient opening the link starts a transfer out of the site.
    "share.created": _alert(_OBJECT_ATTRS, "C", *_SHARE),
    "share.opened": EventMapping(_A.BEGIN_TRANSFERRING, "E", (), _SHARE),
    "share.revoked": _alert(_OBJECT_ATTRS, "U", *_SHARE),
    "share.expired": _alert(_OBJECT_ATTRS, "U", *_SHARE),
    # The audit log itself.
    "audit.log.used": EventMapping(_A.AUDIT_LOG_USED, "R", (), (ObjectKind.AUDIT_LOG,)),
    "audit.head.signed": _private("audit.head.signed", _A.APPLICATION_ACTIVITY, ObjectKind.AUDIT_LOG),
    "audit.pruned": _private("audit.pruned", _A.AUDIT_LOG_USED, ObjectKind.AUDIT_LOG),
    # Monitor and containment.
    "alert.raised": _private("alert.raised"),
    "incident.opened": _private("incident.opened"),
    "incident.updated": _private("incident.updated"),
    "containment.account_locked": _alert(_USER_ATTRS),
    "containment.sessions_revoked": _alert(_USER_ATTRS),
    "containment.shares_expired": _alert(_OBJECT_ATTRS, "U", *_SHARE),
    "containment.ip_blocked": _alert(Type.NETWORK_CONFIGURATION, "U", ObjectKind.NODE),
    "containment.mfa_reset": _alert(_USER_ATTRS),
    "containment.device_suspended": _alert(Type.NODE_AUTHENTICATION, "U", ObjectKind.NODE),
    "containment.undone": _private("containment.undone", _A.SECURITY_ALERT, ObjectKind.USER),
    "containment.refused": _private("containment.refused", _A.SECURITY_ALERT, ObjectKind.USER),
    "external.other": _private("external.other"),
    "external.rejected": _private("external.rejected"),
}


def mapping_for(event_type: str) -> EventMapping:
    """The mapping for ``event_type``; an unknown type maps like ``external.other``.

    Never raises: an event the table does not know is still exported, under a
    ``99PACSGUARD`` EventTypeCode carrying its own name.
    """
    known = EVENT_MAPPINGS.get(event_type)
    if known is not None:
        return known
    return _private(event_type[:64] or "external.other")


_OUTCOME_INDICATOR = {
    Outcome.SUCCESS: "0",
    Outcome.DENIED: "4",
    Outcome.FAILURE: "4",
    Outcome.ERROR: "8",
}


def outcome_indicator(outcome: Outcome) -> str:
    """PS3.15 EventOutcomeIndicator: success 0, denied/failure 4 (minor), error 8 (serious)."""
    return _OUTCOME_INDICATOR[outcome]
