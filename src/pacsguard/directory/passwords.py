"""Passwords: the site's password policy and argon2id hashing (argon2-cffi).

Verification costs the same whether or not the account exists or has a password: an
unknown user is checked against a dummy hash made at start-up.
"""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pacsguard.config import PasswordPolicy
from pacsguard.errors import WeakPassword

__all__ = ["PasswordVault", "check_policy", "policy_problems"]

_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)


def policy_problems(policy: PasswordPolicy, password: str, username: str | None = None) -> list[str]:
    """Every rule of ``policy`` that ``password`` breaks (empty when it is acceptable)."""
    problems = []
    if len(password) < policy.min_length:
        problems.append(f"use at least {policy.min_length} characters")
    if len(password) > policy.max_length:
        problems.append(f"use at most {policy.max_length} characters")
    classes = sum(any(c in cls for c in password) for cls in _CLASSES)
    classes += any(not any(c in cls for cls in _CLASSES) for c in password)
    if classes < policy.min_classes:
        problems.append(
            f"mix at least {policy.min_classes} of: lower case, upper case, digits, other characters (found {classes})"
        )
    if policy.forbid_username and username and username.lower() in password.lower():
        problems.append("do not include the user name")
    return problems


def check_policy(policy: PasswordPolicy, password: str, username: str | None = None) -> None:
    """Raises ``WeakPassword`` naming every rule ``password`` breaks."""
    problems = policy_problems(policy, password, username)
    if problems:
        raise WeakPassword(problems)


class PasswordVault:
    """Hashes and verifies passwords with argon2id at a constant cost per check."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._dummy: str | None = None

    def _dummy_hash(self) -> str:
        # Made on first need (an unknown user), with the same parameters as real hashes.
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(24))
        return self._dummy

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; ``None`` is checked against a dummy."""
        target = stored if stored is not None else self._dummy_hash()
        try:
            self._hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with weaker parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
