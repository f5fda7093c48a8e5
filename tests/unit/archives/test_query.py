"""QidoQuery: what a client may ask, and exactly what is sent upstream."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacsguard.archives import DateRange, Level, QidoQuery, is_valid_uid
from pacsguard.errors import ArchiveQueryError


@pytest.mark.parametrize(
    ("raw", "upstream"),
    [
        ("PatientName=Fischer%5EMaria", "PatientName=Fischer^Maria"),
        ("PatientID=AB%2A&PatientName=M%3Fller", "PatientID=AB*&PatientName=M?ller"),
        ("PatientName=Fischer%5EMaria%20Anna", "PatientName=Fischer^Maria?Anna"),
        ("PatientName=Fischer^Maria+Anna", "PatientName=Fischer^Maria?Anna"),
        ("00100020=P1", "PatientID=P1"),
        ("StudyDate=20240101-20241231", "StudyDate=20240101-20241231"),
        ("StudyDate=-20241231", "StudyDate=-20241231"),
        ("StudyDate=20240315-20240315", "StudyDate=20240315"),
        ("ModalitiesInStudy=CT,MR", "ModalitiesInStudy=CT,MR"),
        ("AccessionNumber=A1&StudyInstanceUID=1.2.3,1.2.4", "AccessionNumber=A1&StudyInstanceUID=1.2.3,1.2.4"),
        ("limit=0&offset=0", ""),
        ("offset=20&limit=10&PatientID=X", "PatientID=X&limit=10&offset=20"),
        ("includefield=PatientBirthDate&includefield=00081030", "includefield=PatientBirthDate,StudyDescription"),
        ("includefield=all&includefield=PatientSex", "includefield=all"),
        ("fuzzymatching=true", "fuzzymatching=true"),
        ("fuzzymatching=false", ""),
        ("", ""),
    ],
)
def test_rebuilt_upstream_query(raw: str, upstream: str) -> None:
    assert QidoQuery.parse(raw).to_query_string() == upstream


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        ("PatientID=A&PatientID=B", "PatientID", "more than once"),
        ("PatientID=A&00100020=B", "00100020", "more than once"),
        ("PatientId=A", "PatientId", "not a supported search key"),
        ("Modality=CT", "Modality", "ModalitiesInStudy"),
        ("SOPInstanceUID=1.2", "SOPInstanceUID", "not a search key"),
        ("StudyInstanceUID=1.2.03", "StudyInstanceUID", "not a valid DICOM UID"),
        ("StudyInstanceUID=1.2.3,", "StudyInstanceUID", "empty item"),
        ("StudyInstanceUID=1.2.*", "StudyInstanceUID", "not a valid DICOM UID"),
        ("StudyDate=2024", "StudyDate", "not a date"),
        ("StudyDate=20240230", "StudyDate", "not a calendar date"),
        ("StudyDate=20241231-20240101", "StudyDate", "starts after it ends"),
        ("StudyDate=-", "StudyDate", "at least one end"),
        ("limit=-1", "limit", "must not be negative"),
        ("limit=ten", "limit", "not a whole number"),
        ("offset=-5", "offset", "must not be negative"),
        ("PatientID=A%26PatientID%3DB", "PatientID", "'&' is not allowed"),
        ("PatientName=A%5CB", "PatientName", "is not allowed"),
        ("PatientID=A,B", "PatientID", "is not allowed"),
        ("PatientID=", "PatientID", "1 to 64 characters"),
        ("ModalitiesInStudy=ct", "Modality", "not a modality code"),
        ("includefield=NoSuchThing", "includefield", "not a DICOM attribute keyword"),
        ("fuzzymatching=yes", "fuzzymatching", "true or false"),
    ],
)
def test_refused_with_the_bad_key(raw: str, key: str, says: str) -> None:
    with pytest.raises(ArchiveQueryError, match=says) as caught:
        QidoQuery.parse(raw)
    assert caught.value.key == key


def test_series_and_instance_levels() -> None:
    series = QidoQuery.parse("Modality=MR&SeriesInstanceUID=1.2.3", Level.SERIES)
    assert series.to_query_string() == "Modality=MR&SeriesInstanceUID=1.2.3"
    instance = QidoQuery.parse("SOPInstanceUID=1.2.3.4", Level.INSTANCE)
    assert instance.sop_uids == ("1.2.3.4",)
    with pytest.raises(ArchiveQueryError):
        QidoQuery.parse("ModalitiesInStudy=CT", Level.SERIES)


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ArchiveQueryError):
        QidoQuery(study_uids=("1..2",))
    with pytest.raises(ArchiveQueryError):
        QidoQuery(limit=0)
    with pytest.raises(ArchiveQueryError):
        QidoQuery(modality="CT")  # study level
    query = QidoQuery(patient_id="X", limit=5, offset=10)
    assert query.filters_only() == QidoQuery(patient_id="X")
    assert query.with_page(1, 2).to_query_string() == "PatientID=X&limit=1&offset=2"


def test_date_range_contains() -> None:
    days = DateRange.parse("20240101-20240131")
    assert days.contains(date(2024, 1, 1))
    assert days.contains(date(2024, 1, 31))
    assert not days.contains(date(2024, 2, 1))
    assert not days.contains(None)
    assert DateRange.parse("20240101-").contains(date(2099, 1, 1))


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2", "0", "2.25.1234567890"])
def test_valid_uids(uid: str) -> None:
    assert is_valid_uid(uid)


@pytest.mark.parametrize("uid", ["", "1.", ".1", "1..2", "01.2", "1.2a", "1" * 65, "1.2 ", "1.2/3"])
def test_invalid_uids(uid: str) -> None:
    assert not is_valid_uid(uid)


@given(st.text(max_size=40))
def test_any_patient_id_is_refused_or_sent_as_one_parameter(text: str) -> None:
    refused: ArchiveQueryError | None = None
    try:
        query = QidoQuery.parse([("PatientID", text)])
    except ArchiveQueryError as exc:
        refused = exc
    if refused is not None:
        assert refused.key == "PatientID"
        return
    upstream = query.to_query_string()
    assert upstream.count("&") == 0
    assert upstream.count("=") == 1
    assert upstream.startswith("PatientID=")
