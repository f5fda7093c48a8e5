"""A rule's ``owner``, resolved to the e-mail addresses the ``email`` channel writes to.

A rule names its owner as one of (tried in this order):

- an e-mail address (``soc@hospital.example``): used as it is;
- a principal id (``olga``): that principal's ``email`` in the directory, while the
  account is active (set with ``pacsguard users add --email`` or ``Principals.update``);
- a role (``security-officer``, or ``north/security-officer`` for one zone): the e-mail of
  every active person holding that role now (delegated subsets do not count).

An owner that resolves to nobody adds no recipient; the ``to`` list of ``notify.yaml``
always receives the mail as well, so an alert never goes unmailed for want of an address.
"""

from __future__ import annotations

from pacsguard.directory import AccountState, Directory, PrincipalKind
from pacsguard.errors import AccountLocked, NotFound

__all__ = ["OwnerAddresses"]


class OwnerAddresses:
    """Resolves owners through the directory, at send time (so a new officer counts at once)."""

    def __init__(self, directory: Directory) -> None:
        self._dir = directory

    def __call__(self, owner: str) -> tuple[str, ...]:
        """The addresses of ``owner`` (see the module), sorted, possibly none."""
        if "@" in owner:
            return (owner,)
        principal = self._dir.principals.find(owner)
        if principal is not None:
            return (principal.email,) if principal.email and self._roles(owner) is not None else ()
        return tuple(sorted(self._role_addresses(owner)))

    def _roles(self, principal_id: str) -> list[str] | None:
        """The whole roles the principal holds now (``zone/name``), ``None`` unless active."""
        try:
            subject = self._dir.subject(principal_id)
        except (NotFound, AccountLocked):
            return None
        return [str(held.role) for held in subject.roles if held.actions is None]

    def _role_addresses(self, role: str) -> set[str]:
        found: set[str] = set()
        for person in self._dir.principals.list(kind=PrincipalKind.PERSON):
            if not person.email or person.state is AccountState.DISABLED:
                continue
            held = self._roles(person.id) or []
            if any(role in (ref, ref.rsplit("/", 1)[-1]) for ref in held):
                found.add(person.email)
        return found
