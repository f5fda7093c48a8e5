"""Principals, roles, assignments, delegations, sessions and authentication."""

from pacsguard.directory.certificates import ClientCertificateVerifier, VerifiedCertificate
from pacsguard.directory.consents import Consents
from pacsguard.directory.external import BearerIdentity, ExternalLogin
from pacsguard.directory.model import (
    AccountState,
    Acting,
    Assignment,
    By,
    Client,
    Delegation,
    Device,
    IssuedSession,
    IssuedToken,
    Lock,
    Operator,
    Principal,
    PrincipalKind,
    SessionInfo,
    TokenInfo,
    TotpEnrolment,
)
from pacsguard.directory.oidc import OidcVerifier, VerifiedToken
from pacsguard.directory.passwords import check_policy, policy_problems
from pacsguard.directory.service import Containment, Directory

__all__ = [
    "AccountState",
    "Acting",
    "Assignment",
    "BearerIdentity",
    "By",
    "Client",
    "ClientCertificateVerifier",
    "Consents",
    "Containment",
    "Delegation",
    "Device",
    "Directory",
    "ExternalLogin",
    "IssuedSession",
    "IssuedToken",
    "Lock",
    "OidcVerifier",
    "Operator",
    "Principal",
    "PrincipalKind",
    "SessionInfo",
    "TokenInfo",
    "TotpEnrolment",
    "VerifiedCertificate",
    "VerifiedToken",
    "check_policy",
    "policy_problems",
]
