"""The study catalogue: which zone owns a study, in which archive, for which patient, and
how sensitive it is (ISO/TS 22600-1 protection category 0..5).

The gateway filters query results and decides on retrievals from it, so it answers in
batches (``get_many``). Sensitivity starts from the owning zone's rules (first match of
modality / description wins) and is changed only by ``set_sensitivity``, which emits a
``study.classify`` event (ISO/TS 22600-1 §4.11: classification is an audited right; the
caller checks that right with the decision point before calling).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, Row, delete, insert, select, update

from pacsguard import yamlfile
from pacsguard.archives.base import InstanceInfo
from pacsguard.clock import Clock, utc
from pacsguard.domain import Actor, AuditEvent, EventSink, ObjectRef, Sensitivity
from pacsguard.errors import ArchiveNotFound, ConfigError, Problem
from pacsguard.storage.archive_tables import archive_sync_state, study_catalogue

__all__ = ["CatalogueEntry", "SensitivityRule", "StudyCatalogue", "ZoneRules", "load_sensitivity_rules"]

C = study_catalogue.c
_BATCH = 500


@dataclass(frozen=True, slots=True)
class SensitivityRule:
    """Gives ``sensitivity`` to a study whose modality and/or description match."""

    sensitivity: Sensitivity
    modality: str | None = None
    description: re.Pattern[str] | None = None

    def matches(self, modalities: Sequence[str], description: str) -> bool:
        if self.modality is not None and self.modality not in modalities:
            return False
        return self.description is None or self.description.search(description) is not None


@dataclass(frozen=True, slots=True)
class ZoneRules:
    """A zone's rules, tried in order; ``default`` when none matches."""

    rules: tuple[SensitivityRule, ...] = ()
    default: Sensitivity = Sensitivity.UNASSIGNED

    def classify(self, modality: str, description: str) -> Sensitivity:
        modalities = [m for m in re.split(r"[,\\]", modality) if m]
        return next((r.sensitivity for r in self.rules if r.matches(modalities, description)), self.default)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One catalogued study."""

    study_uid: str
    zone: str
    archive: str
    patient_id: str
    sensitivity: Sensitivity
    modality: str
    study_date: date | None
    description: str
    classified_by: str | None
    recorded_at: datetime
    updated_at: datetime


class StudyCatalogue:
    """Study UID → owning zone, archive, patient, sensitivity; rows in ``study_catalogue``."""

    def __init__(
        self, engine: Engine, *, events: EventSink, clock: Clock, rules: Mapping[str, ZoneRules] | None = None
    ) -> None:
        self._engine = engine
        self._events = events
        self._clock = clock
        self._rules = dict(rules or {})

    def record(
        self,
        study_uid: str,
        *,
        zone: str,
        archive: str,
        patient_id: str = "",
        modality: str = "",
        study_date: date | None = None,
        description: str = "",
    ) -> CatalogueEntry:
        """Catalogue a study, or refresh what is known of it. The first zone to record a
        study owns it, and a sensitivity once set (by rule or by hand) is kept."""
        now = self._clock.now()
        facts = {"patient_id": patient_id[:64], "study_date": study_date, "description": description[:64]}
        with self._engine.begin() as conn:
            row = conn.execute(select(study_catalogue).where(C.study_uid == study_uid)).first()
            if row is None:
                sensitivity = self._rules.get(zone, ZoneRules()).classify(modality, description)
                conn.execute(
                    insert(study_catalogue).values(
                        study_uid=study_uid, zone=zone, archive=archive, sensitivity=int(sensitivity),
                        modality=modality[:256], recorded_at=now, updated_at=now, **facts,
                    )
                )  # fmt: skip
            else:
                conn.execute(
                    update(study_catalogue)
                    .where(C.study_uid == study_uid)
                    .values(modality=_merge(row.modality, modality)[:256], updated_at=now, **facts)
                )
            entry = conn.execute(select(study_catalogue).where(C.study_uid == study_uid)).one()
        return _entry(entry)

    def record_stored(self, zone: str, archive: str, instances: Iterable[InstanceInfo]) -> list[CatalogueEntry]:
        """Catalogue the studies of instances just stored (a ``StoreResult.stored``)."""
        studies: dict[str, list[InstanceInfo]] = {}
        for info in instances:
            studies.setdefault(info.study_uid, []).append(info)
        out = []
        for uid, infos in studies.items():
            first = infos[0]
            modality = ",".join(dict.fromkeys(i.modality for i in infos if i.modality))
            out.append(self.record(uid, zone=zone, archive=archive, patient_id=first.patient_id, modality=modality,
                                   study_date=first.study_date, description=first.study_description))  # fmt: skip
        return out

    def forget(self, study_uid: str) -> bool:
        """Remove the entry of a study deleted from its archive; ``False`` if there was none.
        A study stored again later is catalogued afresh (its sensitivity by the zone's rules)."""
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(study_catalogue).where(C.study_uid == study_uid)).rowcount)

    def get(self, study_uid: str) -> CatalogueEntry | None:
        """The entry of one study, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(study_catalogue).where(C.study_uid == study_uid)).first()
        return _entry(row) if row else None

    def get_many(self, study_uids: Iterable[str]) -> dict[str, CatalogueEntry]:
        """Entries of many studies at once (in batches of 500); unknown UIDs are absent."""
        wanted = list(dict.fromkeys(study_uids))
        found: dict[str, CatalogueEntry] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                for row in conn.execute(select(study_catalogue).where(C.study_uid.in_(batch))):
                    found[row.study_uid] = _entry(row)
        return found

    def set_sensitivity(self, study_uid: str, value: Sensitivity, by: str, *, reason: str = "") -> CatalogueEntry:
        """Classify a study and emit ``study.classify``; raises ``ArchiveNotFound``."""
        value = Sensitivity(value)
        now = self._clock.now()
        with self._engine.connect() as conn:
            row = conn.execute(select(study_catalogue).where(C.study_uid == study_uid)).first()
        if row is None:
            raise ArchiveNotFound(f"the catalogue holds no study {study_uid}")
        # Recorded before the change: an event the audit log refuses leaves the study as it
        # was (fail closed), and no write lock is held while the log commits (SQLite has one
        # writer at a time, and the log may share its database).
        self._events.emit(
            AuditEvent(
                type="study.classify",
                occurred_at=now,
                actor=Actor(principal_id=by),
                objects=ObjectRef(patient_id=row.patient_id, study_uid=study_uid, zone=row.zone),
                detail={"from": int(row.sensitivity), "to": int(value), "reason": reason},
            )
        )
        with self._engine.begin() as conn:
            conn.execute(
                update(study_catalogue)
                .where(C.study_uid == study_uid)
                .values(sensitivity=int(value), classified_by=by, updated_at=now)
            )
        entry = self.get(study_uid)
        assert entry is not None
        return entry

    # --- resumable sync state -------------------------------------------------------------
    def sync_position(self, zone: str, archive: str) -> tuple[int, bool]:
        """Where the last ``sync`` of ``archive`` for ``zone`` stopped, and whether it finished."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(archive_sync_state).where(
                    archive_sync_state.c.zone == zone, archive_sync_state.c.archive == archive
                )
            ).first()
        return (int(row.next_offset), bool(row.finished)) if row else (0, False)

    def save_sync_position(self, zone: str, archive: str, offset: int, *, finished: bool) -> None:
        """Remember where ``sync`` is, so an interrupted run resumes there."""
        values = {"next_offset": offset, "finished": int(finished), "updated_at": self._clock.now()}
        table = archive_sync_state
        with self._engine.begin() as conn:
            where = (table.c.zone == zone) & (table.c.archive == archive)
            if conn.execute(update(table).where(where).values(**values)).rowcount == 0:
                conn.execute(insert(table).values(zone=zone, archive=archive, **values))


def _merge(old: str, new: str) -> str:
    known = [m for m in old.split(",") if m]
    return ",".join(known + [m for m in new.split(",") if m and m not in known])


def _entry(row: Row[Any]) -> CatalogueEntry:
    return CatalogueEntry(
        study_uid=row.study_uid,
        zone=row.zone,
        archive=row.archive,
        patient_id=row.patient_id,
        sensitivity=Sensitivity(row.sensitivity),
        modality=row.modality,
        study_date=row.study_date,
        description=row.description,
        classified_by=row.classified_by,
        recorded_at=utc(row.recorded_at),  # SQLite hands back naive datetimes
        updated_at=utc(row.updated_at),
    )


# --- the rules file ---------------------------------------------------------------------------
class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensitivity: int = Field(ge=0, le=5)
    modality: str | None = None
    description: str | None = None

    @field_validator("description")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class _ZoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: int = Field(0, ge=0, le=5)
    rules: list[_RuleSpec] = []


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zones: dict[str, _ZoneSpec] = {}


def load_sensitivity_rules(path: Path) -> dict[str, ZoneRules]:
    """Read a ``sensitivity.yaml``; raises ``ConfigError`` naming file, line and key.

    ``zones: {ZONE: {default: 2, rules: [{modality: MG, sensitivity: 3},
    {description: "(?i)psych", sensitivity: 4}]}}``
    """
    data, locator = yamlfile.load(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(Problem(path, "expected a mapping with a 'zones' key", 1))
    spec = yamlfile.validate(_RulesFile, data, locator)
    return {
        zone: ZoneRules(
            tuple(
                SensitivityRule(
                    Sensitivity(r.sensitivity), r.modality, re.compile(r.description) if r.description else None
                )
                for r in z.rules
            ),
            Sensitivity(z.default),
        )
        for zone, z in spec.zones.items()
    }
