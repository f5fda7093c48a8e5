"""The embedded store on both database backends: sealed files, index, QIDO, WADO, STOW."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select

from pacsguard.archives import Archive, EmbeddedArchive, Level, QidoQuery
from pacsguard.archives.parts import split_related
from pacsguard.archives.sealing import load_site_key
from pacsguard.archives.synthetic import SyntheticStudy, make_study
from pacsguard.errors import ArchiveError, ArchiveIntegrityError, ArchiveNotFound, ArchiveQueryError
from pacsguard.storage.archive_tables import archive_instances

T = TypeVar("T")


@pytest.fixture
def archive(engine: Engine, tmp_path: Path) -> EmbeddedArchive:
    key = load_site_key(tmp_path / "archive.key")
    return EmbeddedArchive("zone-a", engine, tmp_path / "files", key, public_url="https://gw.example/dicomweb")


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def uids(found: list[dict[str, object]], tag: str = "0020000D") -> list[str]:
    return sorted(item[tag]["Value"][0] for item in found)  # type: ignore[index]


def stored(archive: EmbeddedArchive, *studies: SyntheticStudy) -> None:
    for study in studies:
        assert run(archive.store(study.instances)).ok


def test_site_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    key = load_site_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_site_key(path) == key
    path.write_bytes(b"short")
    with pytest.raises(ArchiveError, match="holds 5 bytes"):
        load_site_key(path)


def test_search_with_wildcards_dates_modality_and_paging(archive: EmbeddedArchive) -> None:
    maria = make_study(patient_id="AB-1", patient_name="Fischer^Maria", accession="A100")
    hans = make_study(patient_id="ab_2", patient_name="Weber^Hans", study_date=date(2020, 1, 2), modality="MR")
    old = make_study(patient_id="X9", patient_name="Fischer^Otto", study_date=date(2019, 6, 1))
    stored(archive, maria, hans, old)

    def find(raw: str) -> list[str]:
        return uids(run(archive.search_studies(QidoQuery.parse(raw))))

    assert find("PatientID=AB-1") == [maria.study_uid]
    assert find("PatientID=AB*") == [maria.study_uid]  # case-sensitive on both backends
    assert find("PatientID=ab?2") == [hans.study_uid]
    assert find("PatientID=AB%5F1") == []  # "_" is a literal, not a wildcard
    assert find("PatientName=fischer*") == sorted([maria.study_uid, old.study_uid])
    assert find("PatientName=Fischer%5EM*") == [maria.study_uid]
    assert find("StudyDate=20200101-20201231") == [hans.study_uid]
    assert find("StudyDate=-20191231") == [old.study_uid]
    assert find("StudyDate=20240315") == [maria.study_uid]
    assert find("ModalitiesInStudy=MR") == [hans.study_uid]
    assert find("ModalitiesInStudy=MR,CT") == sorted([maria.study_uid, hans.study_uid, old.study_uid])
    assert find("AccessionNumber=A100") == [maria.study_uid]
    assert find(f"StudyInstanceUID={old.study_uid},{hans.study_uid}") == sorted([old.study_uid, hans.study_uid])
    # ordered by date: old, hans, maria
    assert find("limit=2") == sorted([old.study_uid, hans.study_uid])
    assert find("limit=2&offset=2") == [maria.study_uid]


def test_study_result_attributes_and_includefield(archive: EmbeddedArchive) -> None:
    study = make_study(series=2, instances_per_series=3, description="CT chest")
    stored(archive, study)
    [plain] = run(archive.search_studies(QidoQuery()))
    assert plain["00201206"]["Value"] == [2]  # NumberOfStudyRelatedSeries
    assert plain["00201208"]["Value"] == [6]
    assert plain["00080061"]["Value"] == ["CT"]
    assert plain["00100010"]["Value"] == [{"Alphabetic": "Fischer^Maria"}]
    assert plain["00081190"]["Value"] == [f"https://gw.example/dicomweb/studies/{study.study_uid}"]
    assert "00100030" not in plain
    [extra] = run(archive.search_studies(QidoQuery.parse("includefield=PatientBirthDate")))
    assert extra["00100030"]["Value"] == ["19700101"]
    [everything] = run(archive.search_studies(QidoQuery.parse("includefield=all")))
    assert "00100040" in everything
    assert "00080018" not in everything  # no instance attribute in a study result
    assert "7FE00010" not in everything
    series = run(archive.search_series(study.study_uid, QidoQuery(level=Level.SERIES)))
    assert uids(series, "0020000E") == sorted(study.series_uids)
    instances = run(archive.search_instances(study.study_uid, study.series_uids[0], QidoQuery(level=Level.INSTANCE)))
    assert uids(instances, "00080018") == sorted(study.sop_uids[:3])
    with pytest.raises(ArchiveQueryError):
        run(archive.search_series(study.study_uid, QidoQuery()))


def test_retrieve_is_byte_identical(archive: EmbeddedArchive) -> None:
    study = make_study(series=2, instances_per_series=2, rows=64, columns=64)
    stored(archive, study)

    async def body(make: Callable[[], Awaitable[object]]) -> list[bytes]:
        retrieved = await make()
        content = await retrieved.read()  # type: ignore[attr-defined]
        return [payload for _, payload in split_related(content, retrieved.content_type)]  # type: ignore[attr-defined]

    assert sorted(run(body(lambda: archive.retrieve_study(study.study_uid)))) == sorted(study.instances)
    series = run(body(lambda: archive.retrieve_series(study.study_uid, study.series_uids[1])))
    assert sorted(series) == sorted(study.instances[2:])
    one = run(body(lambda: archive.retrieve_instance(study.study_uid, study.series_uids[0], study.sop_uids[1])))
    assert one == [study.instances[1]]
    meta = run(archive.metadata(study.study_uid))
    assert sorted(m["00080018"]["Value"][0] for m in meta) == sorted(study.sop_uids)
    assert meta[0]["7FE00010"]["BulkDataURI"].startswith("https://gw.example/dicomweb/studies/")


def test_files_are_sealed_and_a_swapped_file_fails(archive: EmbeddedArchive, engine: Engine) -> None:
    study = make_study(instances_per_series=2, patient_name="Plaintext^Canary")
    stored(archive, study)
    files = sorted(p for p in archive.root.rglob("*") if p.is_file())
    assert len(files) == 2
    for path in files:
        data = path.read_bytes()
        assert b"DICM" not in data
        assert b"Canary" not in data
        assert b"PAT-1" not in data
    first, second = files
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    with pytest.raises(ArchiveIntegrityError, match="altered or swapped"):
        run(_read_all(archive, study))


async def _read_all(archive: EmbeddedArchive, study: SyntheticStudy) -> bytes:
    retrieved = await archive.retrieve_study(study.study_uid)
    return await retrieved.read()


def test_a_corrupt_part_is_refused_and_nothing_is_written(archive: EmbeddedArchive, engine: Engine) -> None:
    study = make_study(instances_per_series=3)
    parts = [study.instances[0], study.instances[1][:-64], b"plain text", study.instances[2]]
    result = run(archive.store(parts))
    assert result.stored == ()
    assert [f.index for f in result.failed] == [0, 1, 2, 3]
    assert "truncated" in result.failed[1].reason
    assert "not a DICOM" in result.failed[2].reason
    assert result.failed[0].reason.startswith("not stored")
    assert not archive.root.exists() or not any(p.is_file() for p in archive.root.rglob("*"))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(archive_instances)).scalar() == 0
    assert run(archive.search_studies(QidoQuery())) == []


def test_duplicates_delete_and_unknown(archive: EmbeddedArchive) -> None:
    assert isinstance(archive, Archive)
    study = make_study()
    stored(archive, study)
    again = run(archive.store(study.instances))
    assert len(again.stored) == 2
    [row] = run(archive.search_studies(QidoQuery()))
    assert row["00201208"]["Value"] == [2]
    run(archive.delete(study.study_uid))
    assert run(archive.search_studies(QidoQuery())) == []
    assert not any(p.is_file() for p in archive.root.rglob("*"))
    with pytest.raises(ArchiveNotFound):
        run(archive.delete(study.study_uid))
    with pytest.raises(ArchiveNotFound):
        run(archive.retrieve_study(study.study_uid))
    with pytest.raises(ArchiveQueryError):
        run(archive.retrieve_study("1.2.3/../x"))


def test_retrieve_streams_one_instance_at_a_time(archive: EmbeddedArchive) -> None:
    study = make_study(instances_per_series=6, rows=128, columns=128)
    stored(archive, study)

    async def chunk_sizes() -> list[int]:
        async with await archive.retrieve_study(study.study_uid) as retrieved:
            return [len(chunk) async for chunk in retrieved]

    sizes = run(chunk_sizes())
    assert sum(sizes) > study.size
    assert max(sizes) == max(len(i) for i in study.instances)
