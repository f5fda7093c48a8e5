"""The DICOMweb adapter against a real Orthanc 1.10 with the DICOMweb plugin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest

from pacsguard.archives import Archive, DicomWebArchive, Level, QidoQuery, StudyCatalogue, SyncReport, sync
from pacsguard.archives.parts import split_related
from pacsguard.archives.synthetic import SyntheticStudy, make_study
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain import RecordingSink
from pacsguard.errors import ArchiveNotFound, ArchiveQueryError, ArchiveUnavailable
from pacsguard.storage import make_engine, migrate
from tests.orthanc import OrthancServer
from tests.postgres import free_port

T = TypeVar("T")
PUBLIC = "https://gateway.example:8443"


def run(make: Callable[[DicomWebArchive], Awaitable[T]], orthanc: OrthancServer) -> T:
    async def main() -> T:
        archive = DicomWebArchive(orthanc.dicomweb_url, name="zone-a", public_url=PUBLIC, admin_url=orthanc.url)
        try:
            return await make(archive)
        finally:
            await archive.aclose()

    return asyncio.run(main())


def store(orthanc: OrthancServer, *studies: SyntheticStudy) -> None:
    async def go(archive: DicomWebArchive) -> None:
        for study in studies:
            result = await archive.store(study.instances)
            assert result.ok, result.failed

    run(go, orthanc)


def q(raw: str, level: Level = Level.STUDY) -> QidoQuery:
    return QidoQuery.parse(raw, level)


def test_stow_lands_and_counts_are_checked(orthanc: OrthancServer) -> None:
    study = make_study(series=2, instances_per_series=3)
    broken = study.instances[0][:-100]
    refused = run(lambda a: a.store([*study.instances, broken, b"not dicom"]), orthanc)
    assert refused.stored == ()
    assert [f.index for f in refused.failed] == list(range(8))
    assert "truncated" in refused.failed[6].reason
    assert "not a DICOM" in refused.failed[7].reason
    assert run(lambda a: a.search_studies(q("")), orthanc) == []
    result = run(lambda a: a.store(study.instances), orthanc)
    assert len(result.stored) == 6
    assert {s.sop_instance_uid for s in result.stored} == set(study.sop_uids)
    assert result.failed == ()
    assert result.study_uids() == [study.study_uid]
    found = run(lambda a: a.search_instances(study.study_uid, None, q("", Level.INSTANCE)), orthanc)
    assert len(found) == 6
    again = run(lambda a: a.store(study.instances[:2]), orthanc)  # Orthanc keeps the first copy, "referenced"
    assert (len(again.stored), again.failed) == (2, ())


def test_qido_by_patient_id_and_name_with_caret_and_wildcards(orthanc: OrthancServer) -> None:
    maria = make_study(patient_id="AB-1", patient_name="Fischer^Maria Anna")
    other = make_study(patient_id="CD-2", patient_name="Weber^Hans", study_date=date(2020, 1, 2), modality="MR")
    store(orthanc, maria, other)

    def uids(raw: str) -> list[str]:
        found = run(lambda a: a.search_studies(q(raw)), orthanc)
        return sorted(item["0020000D"]["Value"][0] for item in found)

    assert uids("PatientID=AB-1") == [maria.study_uid]
    assert uids("PatientID=AB%2A") == [maria.study_uid]  # encoded by the client, decoded and re-sent raw
    assert uids("PatientName=Fischer%5EMaria%20Anna") == [maria.study_uid]
    assert uids("PatientName=Fisch*") == [maria.study_uid]
    assert uids("PatientName=W?ber^*") == [other.study_uid]
    assert uids("StudyDate=20240101-") == [maria.study_uid]
    assert uids("StudyDate=-20201231&ModalitiesInStudy=MR") == [other.study_uid]
    assert uids(f"StudyInstanceUID={other.study_uid}") == [other.study_uid]
    assert uids("limit=1") != uids("limit=1&offset=1")
    assert len(uids("limit=0")) == 2


def test_retrieve_is_byte_identical_and_urls_point_at_the_gateway(orthanc: OrthancServer) -> None:
    # 2 MiB: more than one of the adapter's 1 MiB reads, so more than one chunk whatever the timing
    study = make_study(series=2, instances_per_series=2, rows=512, columns=512)
    store(orthanc, study)

    async def go(archive: DicomWebArchive) -> tuple[str, bytes, bytes, str]:
        async with await archive.retrieve_study(study.study_uid) as whole:
            chunks = [chunk async for chunk in whole]
            content_type = whole.content_type
        body = b"".join(chunks)
        assert len(chunks) > 1  # streamed as it arrives, not read whole
        one = await archive.retrieve_instance(study.study_uid, study.series_uids[1], study.sop_uids[3])
        single = await one.read()
        found = await archive.search_studies(q(f"StudyInstanceUID={study.study_uid}"))
        return content_type, body, single, found[0]["00081190"]["Value"][0]

    content_type, body, single, retrieve_url = run(go, orthanc)
    payloads = sorted(p for _, p in split_related(body, content_type))
    assert payloads == sorted(study.instances)
    assert [p for _, p in split_related(single, content_type_of(single))] == [study.instances[3]]
    assert retrieve_url.startswith(PUBLIC + "/")


def content_type_of(body: bytes) -> str:
    boundary = body.split(b"\r\n", 1)[0][2:].decode()
    return f"multipart/related; boundary={boundary}"


def test_metadata_and_series_search(orthanc: OrthancServer) -> None:
    study = make_study(series=2, instances_per_series=2)
    store(orthanc, study)
    meta = run(lambda a: a.metadata(study.study_uid), orthanc)
    assert sorted(m["00080018"]["Value"][0] for m in meta) == sorted(study.sop_uids)
    series_meta = run(lambda a: a.metadata(study.study_uid, study.series_uids[0]), orthanc)
    assert len(series_meta) == 2
    series = run(lambda a: a.search_series(study.study_uid, q("Modality=CT", Level.SERIES)), orthanc)
    assert sorted(s["0020000E"]["Value"][0] for s in series) == sorted(study.series_uids)


def test_delete_and_unknown_study(orthanc: OrthancServer) -> None:
    study = make_study()
    store(orthanc, study)
    run(lambda a: a.delete(study.study_uid), orthanc)
    assert run(lambda a: a.search_studies(q("")), orthanc) == []
    with pytest.raises(ArchiveNotFound):
        run(lambda a: a.delete(study.study_uid), orthanc)
    with pytest.raises(ArchiveNotFound):
        run(lambda a: a.retrieve_study(study.study_uid), orthanc)
    with pytest.raises(ArchiveNotFound):
        run(lambda a: a.metadata(study.study_uid), orthanc)
    with pytest.raises(ArchiveQueryError) as caught:
        run(lambda a: a.retrieve_study("1.2.3/../../studies"), orthanc)
    assert caught.value.key == "StudyInstanceUID"


def test_an_archive_that_is_down_is_unavailable() -> None:
    async def go() -> None:
        archive = DicomWebArchive(f"http://127.0.0.1:{free_port()}/dicom-web", name="down", timeout=2)
        assert isinstance(archive, Archive)
        try:
            with pytest.raises(ArchiveUnavailable, match=r"'down'.*cannot be reached"):
                await archive.search_studies(QidoQuery())
            with pytest.raises(ArchiveUnavailable):
                await archive.retrieve_study("1.2.3")
            with pytest.raises(ArchiveUnavailable):
                await archive.store(make_study().instances)
        finally:
            await archive.aclose()

    asyncio.run(go())


def test_catalogue_sync_from_orthanc_resumes(
    orthanc: OrthancServer, make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    studies = [make_study(patient_id=f"P{n}", instances_per_series=1) for n in range(5)]
    store(orthanc, *studies)
    site = make_site(**{"sensitivity.yaml": "zones:\n  north:\n    default: 3\n"})
    engine = make_engine(f"sqlite:///{site / 'pacsguard.db'}")
    migrate(engine)
    catalogue = StudyCatalogue(engine, events=RecordingSink(), clock=FakeClock())

    async def first_page(archive: DicomWebArchive) -> SyncReport:
        return await sync(archive, "north", catalogue, page_size=2, max_pages=1)

    archive_name = "zone-a"
    report = run(first_page, orthanc)
    assert (report.recorded, report.finished) == (2, False)
    assert catalogue.sync_position("north", archive_name) == (2, False)
    argv = ["archive", "sync", "--site", str(site), "--zone", "north", "--url", orthanc.dicomweb_url]
    assert main([*argv, "--name", archive_name, "--page-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "3 studies catalogued for zone north (from offset 2" in out
    found = catalogue.get_many(s.study_uid for s in studies)
    assert sorted(e.patient_id for e in found.values()) == [f"P{n}" for n in range(5)]
    assert {e.archive for e in found.values()} == {archive_name}
    assert sorted(int(e.sensitivity) for e in found.values()) == [0, 0, 3, 3, 3]  # the CLI read sensitivity.yaml
    engine.dispose()
    assert main([*argv[:-1], "http://127.0.0.1:1/dicom-web"]) == 1
    assert "cannot be reached" in capsys.readouterr().err
    assert main([*argv[:4], "--zone", "nowhere", "--url", orthanc.dicomweb_url]) == 2
