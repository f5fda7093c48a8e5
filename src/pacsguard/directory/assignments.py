"""Role assignments and attestation rights (ISO/TS 22600-1: who may assign which role).

A role's ``assignable_by`` (zones.yaml) names the roles whose holders may assign it. A
role with an empty ``assignable_by`` may be assigned only by the local site operator,
who is the root of trust. A principal may not assign a role to itself. Revoking an
assignment ends every delegation made from it, and theirs.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from pacsguard.directory._common import Deps, event, iso, new_id
from pacsguard.directory._roles import Family, held_roles, to_assignment
from pacsguard.directory.model import AccountState, Acting, Assignment, By, Operator, actor_of
from pacsguard.directory.principals import to_principal
from pacsguard.domain import AuditEvent, Outcome, Role, RoleRef, Validity
from pacsguard.errors import AttestationRefused, InvalidEntry, NotFound
from pacsguard.storage.directory_tables import principals as tp
from pacsguard.storage.directory_tables import role_assignments as ta
from pacsguard.storage.directory_tables import role_delegations as td

__all__ = ["Assignments"]


class Assignments:
    """Grant and revoke roles, checking the attestation right of whoever does it."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def grant(self, principal_id: str, role: RoleRef, validity: Validity | None = None, *, by: By) -> Assignment:
        """Assign ``role`` to a principal for ``validity``.

        Raises ``NotFound`` (principal or role), ``InvalidEntry`` (a period already over)
        or ``AttestationRefused`` (``by`` lacks the right; an ``admin.role.grant`` event
        with outcome DENIED is emitted first).
        """
        validity = validity or Validity()
        definition = self.role(role)
        now = self._d.now()
        if validity.not_after is not None and validity.not_after <= now:
            raise InvalidEntry(f"the period ends {validity.not_after.isoformat()}, which is already past")
        assignment = Assignment(new_id("a"), principal_id, role, validity, actor_of(by).principal_id or "", now)
        with self._d.engine.begin() as conn:
            _require_principal(conn, principal_id)
            refusal = self._attestation_refusal(conn, definition, principal_id, by)
            if refusal is None:
                conn.execute(ta.insert().values(**_values(assignment)))
        if refusal is not None:
            self._d.events.emit(self._grant_event(assignment, by, Outcome.DENIED, refusal))
            raise AttestationRefused(f"{actor_of(by).principal_id} may not assign {role}: {refusal}")
        self._d.events.emit(self._grant_event(assignment, by, Outcome.SUCCESS, None))
        return assignment

    def revoke(self, assignment_id: str, *, by: By, reason: str = "") -> bool:
        """End an assignment and every delegation made from it; ``False`` if already ended.

        Raises ``NotFound`` or ``AttestationRefused`` (``by`` could not have assigned it).
        """
        now, actor = self._d.now(), actor_of(by)
        events: list[AuditEvent] = []
        with self._d.engine.begin() as conn:
            assignment = _get(conn, assignment_id)
            if assignment.revoked_at is not None:
                return False
            refusal = self._attestation_refusal(conn, self.role(assignment.role), None, by)
            if refusal is None:
                conn.execute(
                    update(ta).where(ta.c.id == assignment_id).values(revoked_at=now, revoked_by=actor.principal_id)
                )
                for d in Family.load(conn, [assignment_id]).descendants(assignment_id=assignment_id):
                    conn.execute(
                        update(td).where(td.c.id == d.id).values(revoked_at=now, revoked_by=actor.principal_id)
                    )
                    events.append(
                        event(
                            "delegation.revoked",
                            now,
                            actor,
                            target=d.to_principal,
                            zone=d.role.zone,
                            detail={
                                "delegation": d.id,
                                "role": str(d.role),
                                "cascade": True,
                                "reason": f"source assignment {assignment_id} revoked",
                            },
                        )
                    )
        detail = {"assignment": assignment_id, "role": str(assignment.role), "reason": reason or refusal or ""}
        outcome = Outcome.DENIED if refusal else Outcome.SUCCESS
        self._d.events.emit(
            event(
                "admin.role.revoke",
                now,
                actor,
                target=assignment.principal_id,
                zone=assignment.role.zone,
                outcome=outcome,
                detail=detail,
            )
        )
        if refusal is not None:
            raise AttestationRefused(f"{actor.principal_id} may not revoke {assignment.role}: {refusal}")
        for e in events:
            self._d.events.emit(e)
        return True

    def get(self, assignment_id: str) -> Assignment:
        """One assignment; raises ``NotFound``."""
        with self._d.engine.connect() as conn:
            return _get(conn, assignment_id)

    def of(self, principal_id: str) -> list[Assignment]:
        """Every assignment of a principal, current or not, oldest first."""
        with self._d.engine.connect() as conn:
            rows = conn.execute(select(ta).where(ta.c.principal_id == principal_id).order_by(ta.c.assigned_at, ta.c.id))
            return [to_assignment(r) for r in rows]

    def role(self, ref: RoleRef) -> Role:
        """The role's definition from zones.yaml; raises ``NotFound``."""
        role = self._d.zones.roles.get(ref)
        if role is None:
            raise NotFound(f"no role {ref} in zones.yaml")
        return role

    def may_assign(self, by: By, role: RoleRef) -> bool:
        """Whether ``by`` has the attestation right for ``role`` now."""
        with self._d.engine.connect() as conn:
            return self._attestation_refusal(conn, self.role(role), None, by) is None

    def _attestation_refusal(self, conn: Connection, role: Role, target: str | None, by: By) -> str | None:
        """Why ``by`` may not assign ``role`` (to ``target``), or ``None`` when it may."""
        if isinstance(by, Operator):
            return None
        acting = Acting(by) if isinstance(by, str) else by
        if not role.assignable_by:
            return "only the site operator assigns this role"
        if acting.principal_id == target:
            return "nobody assigns a role to themselves"
        row = conn.execute(select(tp).where(tp.c.id == acting.principal_id)).first()
        now = self._d.now()
        if row is None or to_principal(row).state_at(now) is not AccountState.ACTIVE:
            return "the assigner is not an active principal"
        held = {h.role for h in held_roles(conn, acting.principal_id, now) if h.actions is None}
        covered = set().union(*(self._d.zones.expand_role(r) for r in held)) if held else set()
        if covered.isdisjoint(role.assignable_by):
            needed = ", ".join(str(r) for r in role.assignable_by)
            return f"holds none of the roles that may assign it ({needed})"
        return None

    def _grant_event(self, a: Assignment, by: By, outcome: Outcome, refusal: str | None) -> AuditEvent:
        detail = {
            "assignment": a.id if outcome is Outcome.SUCCESS else None,
            "role": str(a.role),
            "not_before": iso(a.validity.not_before),
            "not_after": iso(a.validity.not_after),
            **({"reason": refusal} if refusal else {}),
        }
        return event(
            "admin.role.grant",
            a.assigned_at,
            actor_of(by),
            target=a.principal_id,
            zone=a.role.zone,
            outcome=outcome,
            detail=detail,
        )


def _require_principal(conn: Connection, principal_id: str) -> None:
    if conn.execute(select(tp.c.id).where(tp.c.id == principal_id)).first() is None:
        raise NotFound(f"no principal {principal_id!r}")


def _get(conn: Connection, assignment_id: str) -> Assignment:
    row = conn.execute(select(ta).where(ta.c.id == assignment_id)).first()
    if row is None:
        raise NotFound(f"no assignment {assignment_id!r}")
    return to_assignment(row)


def _values(a: Assignment) -> dict[str, object]:
    return {
        "id": a.id,
        "principal_id": a.principal_id,
        "role_zone": a.role.zone,
        "role_name": a.role.name,
        "not_before": a.validity.not_before,
        "not_after": a.validity.not_after,
        "assigned_by": a.assigned_by,
        "assigned_at": a.assigned_at,
    }
