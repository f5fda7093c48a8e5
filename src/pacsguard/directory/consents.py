"""Patient consent directives in the database: recorded, listed, revoked, and handed to
the decision point as ``ConsentDirective`` values with each request.

Every change is an event: ``consent.created`` and ``consent.revoked``, naming the patient.
A revoked directive keeps its row (who revoked it and when) so the history stays auditable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update

from pacsguard.directory._common import Deps, new_id, when
from pacsguard.directory.model import By, actor_of
from pacsguard.domain import AuditEvent, ObjectRef, Validity
from pacsguard.domain.access import Purpose
from pacsguard.domain.decision import ConsentDirective, ConsentKind
from pacsguard.errors import InvalidEntry, NotFound
from pacsguard.storage.consent_tables import consent_directives as tc

__all__ = ["Consents"]

BATCH = 500


class Consents:
    """The consent directives of all patients."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def add(
        self,
        patient_id: str,
        kind: ConsentKind,
        *,
        by: By,
        zones: Iterable[str] = (),
        purposes: Iterable[Purpose] = (),
        validity: Validity | None = None,
        allow_emergency: bool = True,
        description: str = "",
    ) -> ConsentDirective:
        """Record a directive; raises ``InvalidEntry`` for an unknown zone or a directive
        that restricts nothing (zone kinds need zones, ``deny_purposes`` needs purposes)."""
        directive = ConsentDirective(
            id=new_id("c"),
            patient_id=_patient(patient_id),
            kind=kind,
            validity=validity or Validity(),
            zones=frozenset(zones),
            purposes=frozenset(purposes),
            allow_emergency=allow_emergency,
            description=description[:500],
        )
        self._check(directive)
        now = self._d.now()
        with self._d.engine.begin() as conn:
            conn.execute(tc.insert().values(**_row(directive), created_at=now, created_by=actor_of(by).principal_id))
        self._emit("consent.created", directive, by, now)
        return directive

    def revoke(self, directive_id: str, *, by: By) -> bool:
        """End a directive now; ``False`` when it was revoked already. Raises ``NotFound``."""
        now = self._d.now()
        directive = self.get(directive_id)
        with self._d.engine.begin() as conn:
            done = conn.execute(
                update(tc)
                .where(tc.c.id == directive_id, tc.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=actor_of(by).principal_id)
            ).rowcount
        if done:
            self._emit("consent.revoked", directive, by, now)
        return bool(done)

    def get(self, directive_id: str) -> ConsentDirective:
        """One directive, revoked or not; raises ``NotFound``."""
        with self._d.engine.connect() as conn:
            row = conn.execute(select(tc).where(tc.c.id == directive_id)).first()
        if row is None:
            raise NotFound(f"no consent directive {directive_id!r}")
        return _directive(row)

    def of_patient(self, patient_id: str, *, include_revoked: bool = False) -> list[ConsentDirective]:
        """A patient's directives, oldest first."""
        query = select(tc).where(tc.c.patient_id == patient_id).order_by(tc.c.created_at, tc.c.id)
        if not include_revoked:
            query = query.where(tc.c.revoked_at.is_(None))
        with self._d.engine.connect() as conn:
            return [_directive(r) for r in conn.execute(query)]

    def in_force(
        self, patient_ids: Iterable[str], now: datetime | None = None
    ) -> Mapping[str, tuple[ConsentDirective, ...]]:
        """The directives in force at ``now`` for each patient (batched, for filtering
        a query result); patients without any are absent from the mapping."""
        at = now or self._d.now()
        wanted = sorted(set(patient_ids))
        found: dict[str, list[ConsentDirective]] = {}
        with self._d.engine.connect() as conn:
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start : start + BATCH]
                rows = conn.execute(select(tc).where(tc.c.patient_id.in_(chunk), tc.c.revoked_at.is_(None)))
                for row in rows:
                    directive = _directive(row)
                    if directive.validity.contains(at):
                        found.setdefault(directive.patient_id, []).append(directive)
        return {patient: tuple(sorted(ds, key=lambda d: d.id)) for patient, ds in found.items()}

    def _check(self, d: ConsentDirective) -> None:
        unknown = sorted(z for z in d.zones if z not in self._d.zones)
        if unknown:
            raise InvalidEntry(f"unknown zone(s) {', '.join(unknown)}: use zones from zones.yaml")
        if d.kind in (ConsentKind.ONLY_ZONES, ConsentKind.DENY_ZONES) and not d.zones:
            raise InvalidEntry(f"a {d.kind.value} directive needs at least one zone")
        if d.kind is ConsentKind.DENY_PURPOSES and not d.purposes:
            raise InvalidEntry("a deny_purposes directive needs at least one purpose")

    def _emit(self, type_: str, d: ConsentDirective, by: By, now: datetime) -> None:
        detail: dict[str, Any] = {
            "directive": d.id,
            "kind": d.kind.value,
            "zones": sorted(d.zones),
            "purposes": sorted(p.value for p in d.purposes),
            "allow_emergency": d.allow_emergency,
        }
        self._d.events.emit(
            AuditEvent(type_, now, actor=actor_of(by), objects=ObjectRef(patient_id=d.patient_id), detail=detail)
        )


def _patient(patient_id: str) -> str:
    value = patient_id.strip()
    if not value or len(value) > 64 or any(ord(c) < 32 for c in value):
        raise InvalidEntry(f"bad patient id {patient_id!r}: 1-64 printable characters (DICOM PatientID)")
    return value


def _row(d: ConsentDirective) -> dict[str, Any]:
    return {
        "id": d.id,
        "patient_id": d.patient_id,
        "kind": d.kind.value,
        "zones": sorted(d.zones),
        "purposes": sorted(p.value for p in d.purposes),
        "allow_emergency": d.allow_emergency,
        "description": d.description,
        "not_before": d.validity.not_before,
        "not_after": d.validity.not_after,
    }


def _directive(row: Row[Any]) -> ConsentDirective:
    return ConsentDirective(
        id=row.id,
        patient_id=row.patient_id,
        kind=ConsentKind(row.kind),
        validity=Validity(when(row.not_before), when(row.not_after)),
        zones=frozenset(row.zones),
        purposes=frozenset(Purpose(p) for p in row.purposes),
        allow_emergency=row.allow_emergency,
        description=row.description,
    )
