"""Exports from a real Orthanc through the gateway served by uvicorn: the ZIP holds what
Orthanc returns byte for byte, and a study that fails after the first byte leaves the
client with a download that visibly broke off."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from pacsguard import config
from pacsguard.app import Site, build_app, load_site_policy, open_site
from pacsguard.archives import Archive, DicomWebArchive
from pacsguard.archives.parts import split_related
from pacsguard.archives.synthetic import SyntheticStudy, make_study
from pacsguard.audit.reader import LogReader
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent
from pacsguard.gateway import GatewayOptions
from pacsguard.policy import DecisionPoint
from tests.orthanc import OrthancFactory
from tests.postgres import free_port
from tests.serving import in_thread, store_study
from tests.unit.gateway.exporting import EXPORT_RULE
from tests.world import OPERATOR, _seed_people


@dataclass
class Exporting:
    site: Site
    url: str
    token: str
    archive_url: str
    studies: dict[str, SyntheticStudy]

    def post(self, studies: list[str]) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1/exports", json={"studies": studies}, timeout=60, trust_env=False,
                          headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip

    def events(self, type_: str) -> list[AuditEvent]:
        return [e for e in LogReader(self.site.engine).iter_events(None, None) if e.type == type_]


@pytest.fixture
def exporting(make_site: Callable[..., Path], orthanc_factory: OrthancFactory) -> Iterator[Exporting]:
    directory = make_site()
    path = directory / "policies" / "north.yaml"
    path.write_text(path.read_text() + EXPORT_RULE.format(zone="north"))
    clock = FakeClock(datetime.fromisoformat("2026-11-23T10:00:00+00:00"))
    server = orthanc_factory("export-north")
    server.clear()
    port = free_port()
    with open_site(config.load(directory), clock) as site:
        archives: dict[str, Archive] = {"north": DicomWebArchive(server.dicomweb_url, name="north-pacs")}
        _seed_people(site)
        token = site.directory.tokens.issue("alice", name="api", scopes=["api"], by=OPERATOR).secret
        studies = {}
        for name, patient in (("N1", "N-100"), ("N3", "N-103")):
            study = make_study(patient_id=patient, accession=name, series=2, instances_per_series=3, rows=64,
                               columns=64, study_date=date(2024, 3, 1))  # fmt: skip
            store_study(server.dicomweb_url, study)
            site.catalogue.record(study.study_uid, zone="north", archive="north-pacs", patient_id=patient)
            studies[name] = study
        missing = make_study(patient_id="N-104", accession="N4")  # catalogued, but not in Orthanc
        site.catalogue.record(missing.study_uid, zone="north", archive="north-pacs", patient_id="N-104")
        studies["missing"] = missing
        point = DecisionPoint(load_site_policy(directory), clock)
        app = build_app(site, archives, lambda: point, GatewayOptions())
        with in_thread(app, port) as url:
            yield Exporting(site, url, token, server.dicomweb_url, studies)


def _direct(url: str, study_uid: str) -> list[bytes]:
    """The study's instances as Orthanc returns them, straight from its DICOMweb root."""

    async def go() -> list[bytes]:
        archive = DicomWebArchive(url, name="direct")
        try:
            retrieved = await archive.retrieve_study(study_uid)
            return [part for _, part in split_related(await retrieved.read(), retrieved.content_type)]
        finally:
            await archive.aclose()

    return asyncio.run(go())


def test_the_zip_holds_what_orthanc_returns_byte_for_byte(exporting: Exporting) -> None:
    n1, n3 = exporting.studies["N1"], exporting.studies["N3"]
    response = exporting.post([n1.study_uid, n3.study_uid])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        for study in (n1, n3):
            names = sorted(n for n in archive.namelist() if f"/{study.study_uid}/" in n)
            assert sorted(archive.read(n) for n in names) == sorted(_direct(exporting.archive_url, study.study_uid))
            assert len(names) == 6
    events = exporting.events("study.export")
    assert [(e.objects.study_uid, e.objects.count) for e in events] == [(n1.study_uid, 6), (n3.study_uid, 6)]
    assert events[0].objects.bytes == sum(len(b) for b in _direct(exporting.archive_url, n1.study_uid))


def test_a_study_failing_after_the_first_byte_breaks_the_download_off(exporting: Exporting) -> None:
    n1, missing = exporting.studies["N1"], exporting.studies["missing"]
    with pytest.raises(httpx.RemoteProtocolError):
        exporting.post([n1.study_uid, missing.study_uid])
    events = exporting.events("study.export")
    assert [(e.objects.study_uid, e.outcome.value) for e in events] == [
        (n1.study_uid, "success"),
        (missing.study_uid, "error"),
    ]


def test_a_study_orthanc_lacks_is_a_502_before_any_byte(exporting: Exporting) -> None:
    response = exporting.post([exporting.studies["missing"].study_uid])
    assert response.status_code == 502
    assert "archive" in response.json()["error"]
