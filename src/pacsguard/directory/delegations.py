"""Delegation (ISO/TS 22600-1): a holder passes a role, or some of its actions, to another
principal for a period. The chain is kept; re-delegation is refused unless the delegation
allows it; the effective period never exceeds the source's; revoking ends the delegations
made from it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, or_, select, update

from pacsguard.directory._common import Deps, check_principal_id, event, iso, new_id
from pacsguard.directory._roles import Family, held_roles
from pacsguard.directory.model import AccountState, Acting, By, Delegation, Operator, actor_of
from pacsguard.directory.principals import to_principal
from pacsguard.domain import Action, AuditEvent, HeldRole, Outcome, RoleRef, RoleSource, Validity
from pacsguard.errors import DelegationRefused, NotFound
from pacsguard.storage.directory_tables import principals as tp
from pacsguard.storage.directory_tables import role_delegations as td

__all__ = ["Delegations"]


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message
        super().__init__(message)


class Delegations:
    """Make, list and revoke delegations."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def delegate(
        self,
        from_principal: str,
        to_principal: str,
        role: RoleRef,
        validity: Validity,
        *,
        actions: Iterable[Action] | None = None,
        may_redelegate: bool = False,
        source_id: str | None = None,
        by: By | None = None,
    ) -> Delegation:
        """Pass ``role`` (or only ``actions`` of it) from its holder to another principal.

        ``source_id`` picks which held assignment or delegation to pass on (default: an
        assignment, else a delegation that may be passed on). ``by`` defaults to the
        holder. Raises ``NotFound`` or ``DelegationRefused`` (a ``delegation.refused``
        event with the reason is emitted first).
        """
        now = self._d.now()
        by = by if by is not None else Acting(from_principal)
        wanted = frozenset(actions) if actions is not None else None
        try:
            with self._d.engine.begin() as conn:
                self._check_parties(conn, from_principal, to_principal)
                source = _pick_source(conn, held_roles(conn, from_principal, now), role, source_id)
                effective, granted = _narrow(source, validity, wanted, now)
                d = Delegation(
                    new_id("d"),
                    source.chain[0],
                    source.source_id if source.source is RoleSource.DELEGATION else None,
                    from_principal,
                    to_principal,
                    role,
                    granted,
                    effective,
                    may_redelegate,
                    now,
                    (*source.chain, ""),
                )
                d = _insert(conn, d)
        except _Refused as refused:
            detail = {"role": str(role), "from": from_principal, "reason": refused.reason}
            self._d.events.emit(
                event(
                    "delegation.refused",
                    now,
                    actor_of(by),
                    target=to_principal,
                    zone=role.zone,
                    outcome=Outcome.DENIED,
                    detail=detail,
                )
            )
            raise DelegationRefused(refused.message) from None
        self._d.events.emit(self._created_event(d, by))
        return d

    def revoke(self, delegation_id: str, *, by: By, reason: str = "") -> bool:
        """End a delegation and those made from it; ``False`` if already ended.

        Only someone in its chain, its recipient or the site operator may; raises
        ``NotFound`` or ``DelegationRefused``.
        """
        now, actor = self._d.now(), actor_of(by)
        with self._d.engine.begin() as conn:
            target = self.get(delegation_id, conn)
            if target.revoked_at is not None:
                return False
            family = Family.load(conn, [target.assignment_id])
            if not _may_revoke(by, family, target):
                raise DelegationRefused(f"{actor.principal_id} is not in the chain of delegation {delegation_id}")
            ended = [family.delegations[delegation_id], *family.descendants(delegation_id=delegation_id)]
            for d in ended:
                conn.execute(update(td).where(td.c.id == d.id).values(revoked_at=now, revoked_by=actor.principal_id))
        for d in ended:
            detail = {"delegation": d.id, "role": str(d.role), "cascade": d.id != delegation_id, "reason": reason}
            self._d.events.emit(
                event("delegation.revoked", now, actor, target=d.to_principal, zone=d.role.zone, detail=detail)
            )
        return True

    def get(self, delegation_id: str, conn: Connection | None = None) -> Delegation:
        """One delegation with its chain; raises ``NotFound``."""
        if conn is None:
            with self._d.engine.connect() as own:
                return self.get(delegation_id, own)
        row = conn.execute(select(td).where(td.c.id == delegation_id)).first()
        if row is None:
            raise NotFound(f"no delegation {delegation_id!r}")
        return Family.load(conn, [row.assignment_id]).delegations[delegation_id]

    def involving(self, principal_id: str) -> list[Delegation]:
        """Delegations a principal made or received (current or not), with chains, oldest first."""
        with self._d.engine.connect() as conn:
            rows = conn.execute(
                select(td.c.id, td.c.assignment_id).where(
                    or_(td.c.from_principal == principal_id, td.c.to_principal == principal_id)
                )
            ).all()
            family = Family.load(conn, (r.assignment_id for r in rows))
        found = [family.delegations[r.id] for r in rows]
        return sorted(found, key=lambda d: (d.created_at, d.id))

    def chain_of(self, delegation_id: str) -> list[Delegation]:
        """The delegations from the assignment down to this one, oldest first."""
        with self._d.engine.connect() as conn:
            d = self.get(delegation_id, conn)
            return Family.load(conn, [d.assignment_id]).links(delegation_id)

    def _check_parties(self, conn: Connection, sender: str, receiver: str) -> None:
        check_principal_id(receiver)
        rows = {pid: conn.execute(select(tp).where(tp.c.id == pid)).first() for pid in (sender, receiver)}
        for pid, row in rows.items():
            if row is None:
                raise NotFound(f"no principal {pid!r}")
        if sender == receiver:
            raise _Refused("self", "a principal cannot delegate to itself")
        now = self._d.now()
        for pid, row in rows.items():
            if row is not None and to_principal(row).state_at(now) is not AccountState.ACTIVE:
                raise _Refused("inactive_account", f"the account {pid!r} is not active")

    def _created_event(self, d: Delegation, by: By) -> AuditEvent:
        detail = {
            "delegation": d.id,
            "role": str(d.role),
            "from": d.from_principal,
            "actions": sorted(a.value for a in d.actions) if d.actions is not None else None,
            "not_before": iso(d.validity.not_before),
            "not_after": iso(d.validity.not_after),
            "may_redelegate": d.may_redelegate,
            "chain": list(d.chain),
        }
        return event(
            "delegation.created", d.created_at, actor_of(by), target=d.to_principal, zone=d.role.zone, detail=detail
        )


def _pick_source(conn: Connection, held: list[HeldRole], role: RoleRef, source_id: str | None) -> HeldRole:
    """The held role to delegate from: an assignment first, else a delegation that allows it."""
    candidates = [h for h in held if h.role == role and (source_id is None or h.source_id == source_id)]
    if not candidates:
        through = f" through {source_id}" if source_id else ""
        raise _Refused("not_held", f"the delegator does not hold {role} now{through}")
    assignments = [h for h in candidates if h.source is RoleSource.ASSIGNMENT]
    if assignments:
        return assignments[0]
    allowed = conn.execute(
        select(td.c.id).where(td.c.id.in_([h.source_id for h in candidates]), td.c.may_redelegate.is_(True))
    ).scalars()
    allowed_ids = set(allowed)
    for h in candidates:
        if h.source_id in allowed_ids:
            return h
    raise _Refused("no_redelegation", f"{role} was delegated without the right to pass it on")


def _narrow(
    source: HeldRole, validity: Validity, wanted: frozenset[Action] | None, now: datetime
) -> tuple[Validity, frozenset[Action] | None]:
    """The delegation's period clipped to its source's, and its actions within the source's."""
    if wanted is not None and not wanted:
        raise _Refused("no_actions", "name at least one action, or none to pass the whole role")
    if wanted is not None and source.actions is not None and not wanted <= source.actions:
        extra = ", ".join(sorted(a.value for a in wanted - source.actions))
        raise _Refused("actions_not_held", f"the delegator may not pass on actions it does not hold: {extra}")
    granted = wanted if wanted is not None else source.actions
    try:
        effective = validity.within(source.validity)
    except ValueError:
        raise _Refused("period_outside_source", "the period does not overlap the source's period") from None
    if effective.not_after is not None and effective.not_after <= now:
        raise _Refused("period_over", "the period is already over")
    return effective, granted


def _insert(conn: Connection, d: Delegation) -> Delegation:
    conn.execute(
        td.insert().values(
            id=d.id,
            assignment_id=d.assignment_id,
            parent_id=d.parent_id,
            from_principal=d.from_principal,
            to_principal=d.to_principal,
            role_zone=d.role.zone,
            role_name=d.role.name,
            actions=sorted(a.value for a in d.actions) if d.actions is not None else None,
            not_before=d.validity.not_before,
            not_after=d.validity.not_after,
            may_redelegate=d.may_redelegate,
            created_at=d.created_at,
        )
    )
    return replace(d, chain=(*d.chain[:-1], d.id))


def _may_revoke(by: By, family: Family, target: Delegation) -> bool:
    if isinstance(by, Operator):
        return True
    who = by if isinstance(by, str) else by.principal_id
    links = family.links(target.id)
    root = family.assignments.get(target.assignment_id)
    in_chain = {d.from_principal for d in links} | {target.to_principal}
    return who in in_chain or (root is not None and root.principal_id == who)
