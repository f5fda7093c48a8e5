"""The embedded store's database index: writing rows for stored instances and answering
QIDO matching (PS3.4 §C.2.2.2: single value, wildcard, UID list and range matching)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.sql.expression import ColumnClause

from pacsguard.archives.base import InstanceInfo
from pacsguard.archives.query import QidoQuery
from pacsguard.storage.archive_tables import archive_instances, archive_series, archive_studies

__all__ = ["delete_study", "existing", "insert_instance", "instance_rows", "search"]

ST, SE, IN = archive_studies.c, archive_series.c, archive_instances.c


def existing(conn: Connection, archive: str, sop_uids: Sequence[str]) -> set[str]:
    rows = conn.execute(select(IN.sop_uid).where(IN.archive == archive, IN.sop_uid.in_(list(sop_uids))))
    return {r.sop_uid for r in rows}


def insert_instance(
    conn: Connection, archive: str, info: InstanceInfo, extra: dict[str, Any], path: str, size: int
) -> None:
    """Index one instance, creating its study and series rows when new and updating counts."""
    study = conn.execute(select(ST.modalities).where(ST.archive == archive, ST.study_uid == info.study_uid)).first()
    if study is None:
        conn.execute(
            insert(archive_studies).values(
                archive=archive,
                study_uid=info.study_uid,
                patient_id=info.patient_id,
                patient_name=info.patient_name,
                patient_name_key=info.patient_name.upper(),
                study_date=info.study_date,
                study_time=extra["study_time"],
                accession_number=info.accession_number,
                study_description=info.study_description,
                modalities="," + info.modality + "," if info.modality else "",
            )
        )
    elif info.modality and f",{info.modality}," not in study.modalities:
        conn.execute(
            update(archive_studies)
            .where(ST.archive == archive, ST.study_uid == info.study_uid)
            .values(modalities=(study.modalities or ",") + info.modality + ",")
        )
    known = conn.execute(select(SE.series_uid).where(SE.archive == archive, SE.series_uid == info.series_uid)).first()
    if known is None:
        conn.execute(
            insert(archive_series).values(
                archive=archive,
                series_uid=info.series_uid,
                study_uid=info.study_uid,
                modality=info.modality,
                series_number=extra["series_number"],
            )
        )
    conn.execute(
        insert(archive_instances).values(
            archive=archive,
            sop_uid=info.sop_instance_uid,
            series_uid=info.series_uid,
            study_uid=info.study_uid,
            sop_class_uid=info.sop_class_uid,
            instance_number=extra["instance_number"],
            transfer_syntax=info.transfer_syntax,
            path=path,
            size=size,
        )
    )
    _recount(conn, archive, info.study_uid, info.series_uid)


def _recount(conn: Connection, archive: str, study_uid: str, series_uid: str) -> None:
    in_series = select(func.count()).where(IN.archive == archive, IN.series_uid == series_uid).scalar_subquery()
    conn.execute(update(archive_series).where(SE.archive == archive, SE.series_uid == series_uid).values(
        instance_count=in_series
    ))  # fmt: skip
    n_series = select(func.count()).where(SE.archive == archive, SE.study_uid == study_uid).scalar_subquery()
    n_inst = select(func.count()).where(IN.archive == archive, IN.study_uid == study_uid).scalar_subquery()
    conn.execute(
        update(archive_studies)
        .where(ST.archive == archive, ST.study_uid == study_uid)
        .values(series_count=n_series, instance_count=n_inst)
    )


def delete_study(conn: Connection, archive: str, study_uid: str) -> list[str]:
    """Remove a study's rows; returns the paths of its files (empty if unknown)."""
    paths = [r.path for r in conn.execute(select(IN.path).where(IN.archive == archive, IN.study_uid == study_uid))]
    conn.execute(delete(archive_instances).where(IN.archive == archive, IN.study_uid == study_uid))
    conn.execute(delete(archive_series).where(SE.archive == archive, SE.study_uid == study_uid))
    conn.execute(delete(archive_studies).where(ST.archive == archive, ST.study_uid == study_uid))
    return paths


def instance_rows(
    conn: Connection, archive: str, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[Any]:
    """Instances of a study (or one series, or one instance), in series and instance order."""
    stmt = (
        select(IN.sop_uid, IN.series_uid, IN.study_uid, IN.transfer_syntax, IN.path, IN.size)
        .join(archive_series, and_(SE.archive == IN.archive, SE.series_uid == IN.series_uid))
        .where(IN.archive == archive, IN.study_uid == study_uid)
        .order_by(SE.series_number, SE.series_uid, IN.instance_number, IN.sop_uid)
    )
    if series_uid is not None:
        stmt = stmt.where(IN.series_uid == series_uid)
    if sop_uid is not None:
        stmt = stmt.where(IN.sop_uid == sop_uid)
    return list(conn.execute(stmt))


def search(conn: Connection, archive: str, query: QidoQuery, level: str, study_uid: str | None,
           series_uid: str | None) -> list[Any]:  # fmt: skip
    """Rows matching ``query`` at ``level`` (study, series or instance), paged."""
    if level == "study":
        stmt: Select[Any] = select(archive_studies).where(ST.archive == archive).order_by(ST.study_date, ST.study_uid)
    elif level == "series":
        stmt = (
            select(archive_series, ST.patient_id)
            .join(archive_studies, and_(ST.archive == SE.archive, ST.study_uid == SE.study_uid))
            .where(SE.archive == archive)
            .order_by(SE.study_uid, SE.series_number, SE.series_uid)
        )
    else:
        stmt = (
            select(archive_instances, SE.modality, SE.series_number)
            .join(archive_series, and_(SE.archive == IN.archive, SE.series_uid == IN.series_uid))
            .join(archive_studies, and_(ST.archive == IN.archive, ST.study_uid == IN.study_uid))
            .where(IN.archive == archive)
            .order_by(IN.series_uid, IN.instance_number, IN.sop_uid)
        )
    for condition in _conditions(conn, query, study_uid, series_uid):
        stmt = stmt.where(condition)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    if query.offset:
        stmt = stmt.offset(query.offset)
    return list(conn.execute(stmt))


def _conditions(
    conn: Connection, query: QidoQuery, study_uid: str | None, series_uid: str | None
) -> list[ColumnElement[bool]]:
    out = _study_conditions(query, conn.dialect.name == "sqlite")
    for uid_list in (query.study_uids, (study_uid,) if study_uid else ()):
        if uid_list:
            out.append(ST.study_uid.in_(list(uid_list)))
    if query.modality is not None:
        out.append(SE.modality == query.modality)
    for uid_list in (query.series_uids, (series_uid,) if series_uid else ()):
        if uid_list:
            out.append(SE.series_uid.in_(list(uid_list)))
    if query.sop_uids:
        out.append(IN.sop_uid.in_(list(query.sop_uids)))
    return out


def _study_conditions(query: QidoQuery, sqlite: bool) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if query.patient_id is not None:
        out.append(_match(ST.patient_id, query.patient_id, sqlite))
    if query.patient_name is not None:
        out.append(_match(ST.patient_name_key, query.patient_name.upper(), sqlite))
    if query.accession_number is not None:
        out.append(_match(ST.accession_number, query.accession_number, sqlite))
    if query.study_date is not None:
        if query.study_date.start is not None:
            out.append(ST.study_date >= query.study_date.start)
        if query.study_date.end is not None:
            out.append(ST.study_date <= query.study_date.end)
    if query.modalities:
        out.append(or_(*(ST.modalities.contains(f",{m},") for m in query.modalities)))
    return out


def _match(column: ColumnClause[Any] | Any, value: str, sqlite: bool) -> ColumnElement[bool]:
    """Case-sensitive single-value or wildcard matching (``*`` any run, ``?`` one character)."""
    if "*" not in value and "?" not in value:
        return column == value
    if sqlite:  # LIKE ignores case in SQLite; GLOB does not and uses the DICOM wildcards
        return column.op("GLOB")(value.replace("[", "[[]"))
    pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%").replace("?", "_")
    return column.like(pattern, escape="\\")
