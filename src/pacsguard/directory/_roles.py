"""Reading assignments and delegations, and working out which roles a principal holds.

A delegation holds only while every link of its chain holds: the assignment at its root
and each delegation between are unrevoked, and ``now`` lies inside all their periods.
Its effective period is the intersection of theirs (``Validity.within``), so it never
outlives its source, however the rows were written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from pacsguard.directory._common import when
from pacsguard.directory.model import Assignment, Delegation
from pacsguard.domain import Action, HeldRole, RoleRef, RoleSource, Validity
from pacsguard.storage.directory_tables import role_assignments as ta
from pacsguard.storage.directory_tables import role_delegations as td


def to_assignment(row: Row[Any]) -> Assignment:
    r = row._mapping
    return Assignment(
        id=r["id"],
        principal_id=r["principal_id"],
        role=RoleRef(r["role_zone"], r["role_name"]),
        validity=Validity(when(r["not_before"]), when(r["not_after"])),
        assigned_by=r["assigned_by"],
        assigned_at=when(r["assigned_at"]),  # type: ignore[arg-type]
        revoked_at=when(r["revoked_at"]),
        revoked_by=r["revoked_by"],
    )


def to_delegation(row: Row[Any], chain: tuple[str, ...] = ()) -> Delegation:
    r = row._mapping
    actions = frozenset(Action(a) for a in r["actions"]) if r["actions"] is not None else None
    return Delegation(
        id=r["id"],
        assignment_id=r["assignment_id"],
        parent_id=r["parent_id"],
        from_principal=r["from_principal"],
        to_principal=r["to_principal"],
        role=RoleRef(r["role_zone"], r["role_name"]),
        actions=actions,
        validity=Validity(when(r["not_before"]), when(r["not_after"])),
        may_redelegate=bool(r["may_redelegate"]),
        created_at=when(r["created_at"]),  # type: ignore[arg-type]
        chain=chain,
        revoked_at=when(r["revoked_at"]),
        revoked_by=r["revoked_by"],
    )


class Family:
    """Every delegation made from a set of assignments, with those assignments."""

    def __init__(self, assignments: Iterable[Assignment], delegations: Iterable[Delegation]) -> None:
        self.assignments = {a.id: a for a in assignments}
        self.delegations = {d.id: d for d in delegations}

    @classmethod
    def load(cls, conn: Connection, assignment_ids: Iterable[str]) -> Family:
        ids = sorted(set(assignment_ids))
        if not ids:
            return cls((), ())
        assignments = [to_assignment(r) for r in conn.execute(select(ta).where(ta.c.id.in_(ids)))]
        rows = conn.execute(select(td).where(td.c.assignment_id.in_(ids)).order_by(td.c.created_at, td.c.id)).all()
        family = cls(assignments, (to_delegation(r) for r in rows))
        family.delegations = {d.id: replace(d, chain=family.chain(d.id)) for d in family.delegations.values()}
        return family

    def links(self, delegation_id: str) -> list[Delegation]:
        """The delegations from the assignment down to this one, oldest first."""
        out: list[Delegation] = []
        current: str | None = delegation_id
        while current is not None and current in self.delegations and len(out) <= len(self.delegations):
            out.append(self.delegations[current])
            current = out[-1].parent_id
        return out[::-1]

    def chain(self, delegation_id: str) -> tuple[str, ...]:
        links = self.links(delegation_id)
        return (links[0].assignment_id, *(d.id for d in links)) if links else ()

    def effective(self, delegation_id: str) -> tuple[Validity, frozenset[Action] | None] | None:
        """The delegation's effective period and actions, or ``None`` if a link is revoked."""
        links = self.links(delegation_id)
        root = self.assignments.get(links[0].assignment_id) if links else None
        if root is None or root.revoked_at is not None or any(d.revoked_at is not None for d in links):
            return None
        validity = root.validity
        actions: frozenset[Action] | None = None
        for d in links:
            try:
                validity = d.validity.within(validity)
            except ValueError:  # the periods do not overlap at all
                return None
            if d.actions is not None:
                actions = d.actions if actions is None else actions & d.actions
        return validity, actions

    def descendants(self, *, assignment_id: str | None = None, delegation_id: str | None = None) -> list[Delegation]:
        """Unrevoked delegations made, directly or further down, from an assignment or delegation."""
        out: list[Delegation] = []
        for d in self.delegations.values():
            if d.revoked_at is not None:
                continue
            chain = d.chain
            if (assignment_id and chain[:1] == (assignment_id,)) or (delegation_id and delegation_id in chain[1:-1]):
                out.append(d)
        return out


def held_roles(conn: Connection, principal_id: str, now: datetime) -> list[HeldRole]:
    """The roles ``principal_id`` holds at ``now``, from assignments then delegations."""
    held: list[HeldRole] = []
    rows = conn.execute(
        select(ta).where(ta.c.principal_id == principal_id, ta.c.revoked_at.is_(None)).order_by(ta.c.assigned_at)
    )
    for a in (to_assignment(r) for r in rows):
        if a.active(now):
            held.append(HeldRole(a.role, RoleSource.ASSIGNMENT, a.id, a.validity, None, (a.id,)))
    received = conn.execute(
        select(td.c.id, td.c.assignment_id).where(td.c.to_principal == principal_id, td.c.revoked_at.is_(None))
    ).all()
    family = Family.load(conn, (r.assignment_id for r in received))
    for delegation_id in sorted({r.id for r in received}, key=lambda i: family.delegations[i].created_at):
        found = family.effective(delegation_id)
        if found is None or not found[0].contains(now):
            continue
        d = family.delegations[delegation_id]
        held.append(HeldRole(d.role, RoleSource.DELEGATION, d.id, found[0], found[1], d.chain))
    return held
