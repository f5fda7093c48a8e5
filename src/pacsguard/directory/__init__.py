"""Principals, roles, assignments, delegations, sessions and authentication."""

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
from pacsguard.directory.passwords import check_policy, policy_problems
from pacsguard.directory.service import Containment, Directory

__all__ = [
    "AccountState",
    "Acting",
    "Assignment",
    "By",
    "Client",
    "Containment",
    "Delegation",
    "Device",
    "Directory",
    "IssuedSession",
    "IssuedToken",
    "Lock",
    "Operator",
    "Principal",
    "PrincipalKind",
    "SessionInfo",
    "TokenInfo",
    "TotpEnrolment",
    "check_policy",
    "policy_problems",
]
