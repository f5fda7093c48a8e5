"""The gateway in front of two real Orthancs (one per zone), served by uvicorn on loopback
and used through ``dicomweb-client`` exactly as a viewer would."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacsguard import config
from pacsguard.app import Site, build_app, load_site_policy, open_site
from pacsguard.archives import Archive, DicomWebArchive
from pacsguard.archives.parts import split_related
from pacsguard.archives.synthetic import SyntheticStudy, make_instance, make_study
from pacsguard.audit.reader import LogReader
from pacsguard.clock import FakeClock
from pacsguard.domain import Sensitivity
from pacsguard.gateway import GatewayOptions
from pacsguard.policy import DecisionPoint
from tests.orthanc import OrthancFactory
from tests.postgres import free_port
from tests.serving import in_thread, store_study
from tests.world import EXTRA_RULES, _seed_people

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


class Served:
    """The gateway on a uvicorn server, with the Orthancs behind it and a client per person."""

    def __init__(self, site: Site, url: str, tokens: dict[str, str], studies: dict[str, SyntheticStudy],
                 orthancs: dict[str, str]) -> None:  # fmt: skip
        self.site, self.url, self.tokens, self.studies, self.orthancs = site, url, tokens, studies, orthancs

    def client(self, who: str) -> DICOMwebClient:
        return DICOMwebClient(f"{self.url}/dicomweb", headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def get(self, who: str, path: str, **headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.tokens[who]}", **headers}
        return httpx.get(f"{self.url}{path}", headers=auth, timeout=30, trust_env=False)

    def event_types(self) -> list[str]:
        return [e.type for e in LogReader(self.site.engine).iter_events(None, None)]


@pytest.fixture
def served(make_site: Callable[..., Path], orthanc_factory: OrthancFactory) -> Iterator[Served]:
    directory = make_site()
    for zone, rules in EXTRA_RULES.items():
        path = directory / "policies" / f"{zone}.yaml"
        path.write_text(path.read_text() + rules)
    clock = FakeClock(datetime.fromisoformat("2026-11-23T10:00:00+00:00"))
    servers = {zone: orthanc_factory(f"gw-{zone}") for zone in ("north", "south")}
    for server in servers.values():
        server.clear()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with open_site(config.load(directory), clock) as site:
        archives: dict[str, Archive] = {
            zone: DicomWebArchive(s.dicomweb_url, name=f"{zone}-pacs", public_url=public, admin_url=s.url)
            for zone, s in servers.items()
        }
        tokens = _seed_people(site)
        plan = {"N1": ("north", "N-100", Sensitivity.INTERNAL), "N2": ("north", "N-101", Sensitivity.SECRET),
                "S1": ("south", "S-200", Sensitivity.INTERNAL)}  # fmt: skip
        studies = {}
        for name, (zone, patient, sensitivity) in plan.items():
            study = make_study(patient_id=patient, accession=name, series=2, instances_per_series=2, rows=64,
                               columns=64, study_date=date(2024, 3, 1))  # fmt: skip
            store_study(servers[zone].dicomweb_url, study)
            site.catalogue.record(study.study_uid, zone=zone, archive=f"{zone}-pacs", patient_id=patient)
            site.catalogue.set_sensitivity(study.study_uid, sensitivity, by="olga")
            studies[name] = study
        point = DecisionPoint(load_site_policy(directory), clock)
        app = build_app(site, archives, lambda: point, GatewayOptions(public_url=public))
        with in_thread(app, port) as url:
            yield Served(site, url, tokens, studies, {z: s.dicomweb_url for z, s in servers.items()})


def _parts(response: httpx.Response) -> list[bytes]:
    assert response.status_code == 200, response.text
    return [payload for _, payload in split_related(response.content, response.headers["content-type"])]


def test_allowed_studies_come_back_byte_identical_to_direct_retrieval(served: Served) -> None:
    for name, zone in (("N1", "north"), ("S1", "south")):
        study = served.studies[name]
        through = _parts(served.get("alice", f"/dicomweb/studies/{study.study_uid}", Accept=ACCEPT))
        direct = _parts(httpx.get(f"{served.orthancs[zone]}/studies/{study.study_uid}", headers={"Accept": ACCEPT},
                                  timeout=30, trust_env=False))  # fmt: skip
        assert sorted(through) == sorted(direct) == sorted(study.instances)
    client = served.client("alice")
    n1 = served.studies["N1"]
    datasets = client.retrieve_study(n1.study_uid)
    assert sorted(ds.SOPInstanceUID for ds in datasets) == sorted(n1.sop_uids)
    frames = client.retrieve_instance_frames(n1.study_uid, n1.series_uids[0], n1.sop_uids[0], [1])
    pixels = dcmread(io.BytesIO(n1.instances[0])).PixelData
    assert frames == [pixels]
    assert served.event_types().count("study.read") == 4


def test_denied_studies_are_invisible_to_a_viewer(served: Served) -> None:
    client = served.client("alice")
    n1, n2, s1 = (served.studies[k] for k in ("N1", "N2", "S1"))
    found = {r["0020000D"]["Value"][0] for r in client.search_for_studies()}
    assert found == {n1.study_uid, s1.study_uid}
    searches = [
        client.search_for_studies(fields=["all"]),
        client.search_for_studies(fuzzymatching=True, search_filters={"PatientID": "N-10*"}),
        client.search_for_studies(search_filters={"PatientName": "*"}),
        client.search_for_studies(search_filters={"StudyInstanceUID": n2.study_uid}),
        client.search_for_series(),
        client.search_for_instances(fields=["all"]),
        client.search_for_series(search_filters={"StudyInstanceUID": n2.study_uid}),
    ]
    for result in searches:
        text = str(result)
        assert n2.study_uid not in text
        assert "N-101" not in text
        assert f"127.0.0.1:{served.orthancs['north'].split(':')[2].split('/')[0]}" not in text
    pages = [client.search_for_studies(limit=1, offset=i) for i in range(3)]
    assert [len(p) for p in pages] == [1, 1, 0]
    for call in (
        lambda: client.retrieve_study(n2.study_uid),
        lambda: client.retrieve_study_metadata(n2.study_uid),
        lambda: client.retrieve_series(n2.study_uid, n2.series_uids[0]),
        lambda: client.retrieve_instance(n2.study_uid, n2.series_uids[0], n2.sop_uids[0]),
        lambda: client.retrieve_instance_frames(n2.study_uid, n2.series_uids[0], n2.sop_uids[0], [1]),
    ):
        with pytest.raises(requests.HTTPError) as caught:
            call()
        assert caught.value.response is not None
        assert caught.value.response.status_code == 404
    bulk = f"{served.url}/dicomweb/studies/{n2.study_uid}/series/{n2.series_uids[0]}/instances/{n2.sop_uids[0]}"
    assert served.get("alice", bulk.removeprefix(served.url) + "/bulk/7FE00010").status_code == 404


def test_urls_in_answers_point_at_the_gateway(served: Served) -> None:
    client = served.client("alice")
    n1 = served.studies["N1"]
    for item in client.search_for_studies():
        assert item["00081190"]["Value"][0].startswith(f"{served.url}/dicomweb/studies/")
    metadata = client.retrieve_study_metadata(n1.study_uid)
    text = str(metadata)
    assert "/dicom-web/" not in text
    uris = [v["BulkDataURI"] for item in metadata for v in item.values() if isinstance(v, dict) and "BulkDataURI" in v]
    assert uris
    assert all(uri.startswith(f"{served.url}/dicomweb/studies/{n1.study_uid}/") for uri in uris)
    pixel_uris = [item["7FE00010"]["BulkDataURI"] for item in metadata if "BulkDataURI" in item.get("7FE00010", {})]
    assert pixel_uris
    fetched = client.retrieve_bulkdata(pixel_uris[0])
    assert bytes(fetched[0]) in {dcmread(io.BytesIO(data)).PixelData for data in n1.instances}


def test_stow_lands_in_the_right_zones_orthanc(served: Served) -> None:
    study = make_study(patient_id="S-900", accession="ST")
    datasets = [dcmread(io.BytesIO(data)) for data in study.instances]
    with pytest.raises(requests.HTTPError):
        served.client("alice").store_instances(datasets, additional_params={"zone": "south"})
    served.client("bob").store_instances(datasets)
    direct = {z: httpx.get(f"{u}/studies?StudyInstanceUID={study.study_uid}", timeout=30, trust_env=False).json()
              for z, u in served.orthancs.items()}  # fmt: skip
    assert (len(direct["south"]), len(direct["north"])) == (1, 0)
    entry = served.site.catalogue.get(study.study_uid)
    assert entry is not None
    assert entry.zone == "south"
    assert "study.store" in served.event_types()


def test_bad_input_is_a_clear_4xx_and_never_a_partialstore_study(served: Served) -> None:
    study = make_study(patient_id="N-901")
    good, second = study.instances
    body = b"--x\r\nContent-Type: application/dicom\r\n\r\n" + good + b"\r\n--x\r\nContent-Type: application/dicom"
    body += b"\r\n\r\n" + second[:-300] + b"\r\n--x--\r\n"
    headers = {
        "Authorization": f"Bearer {served.tokens['alice']}",
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=x',
    }
    response = httpx.post(f"{served.url}/dicomweb/studies", content=body, timeout=30, trust_env=False, headers=headers)
    assert response.status_code == 400
    assert "part 2" in response.json()["error"]
    direct = httpx.get(f"{served.orthancs['north']}/studies?StudyInstanceUID={study.study_uid}", timeout=30,
                       trust_env=False)  # fmt: skip
    assert direct.json() == []
    assert served.get("alice", "/dicomweb/studies?StudyDate=20241301").status_code == 400
    assert served.get("alice", "/dicomweb/studies/1.2.3.04").status_code == 400


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.slow
def test_memory_stays_flat_while_streaming_a_500_mb_study(served: Served) -> None:
    study = make_study(patient_id="N-100", series=1, instances_per_series=1, rows=1024, columns=1024)
    per_post, posts = 10, 25  # 250 instances of 2 MiB: about 500 MiB
    for batch in range(posts):
        instances = [
            make_instance(patient_id="N-100", patient_name="Big^Study", study_uid=study.study_uid,
                          series_uid=study.series_uids[0], sop_uid=generate_uid(), study_date=date(2024, 3, 1),
                          number=batch * per_post + i + 1, rows=1024, columns=1024)
            for i in range(per_post)
        ]  # fmt: skip
        stored = SyntheticStudy("N-100", "", study.study_uid, date(2024, 3, 1), "CT", "", "", instances=instances)
        store_study(served.orthancs["north"], stored)
    served.site.catalogue.record(study.study_uid, zone="north", archive="north-pacs", patient_id="N-100")
    baseline, peak, total = _rss(), 0, 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss())
            stop.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        headers = {"Authorization": f"Bearer {served.tokens['alice']}", "Accept": ACCEPT}
        with httpx.stream("GET", f"{served.url}/dicomweb/studies/{study.study_uid}", headers=headers, timeout=120,
                          trust_env=False) as response:  # fmt: skip
            assert response.status_code == 200
            for chunk in response.iter_raw(1 << 20):
                total += len(chunk)
    finally:
        stop.set()
        sampler.join()
    assert total > per_post * posts * 2 * 1024 * 1024
    assert peak - baseline < 50 * 1024 * 1024, f"RSS grew by {(peak - baseline) >> 20} MiB"


def test_deep_pages_through_orthanc_are_the_pages_of_the_filtered_whole(served: Served) -> None:
    # 12 more north studies, every third secret: progressive upstream paging (limit/offset
    # sent to Orthanc) must give exactly the pages of the filtered whole.
    secret = {served.studies["N2"].study_uid}
    for n in range(12):
        study = make_study(patient_id=f"N-3{n:02d}", accession=f"P{n}", series=1, instances_per_series=1,
                           study_date=date(2024, 5, 1 + n))  # fmt: skip
        store_study(served.orthancs["north"], study)
        served.site.catalogue.record(study.study_uid, zone="north", archive="north-pacs", patient_id=f"N-3{n:02d}")
        if n % 3 == 0:
            served.site.catalogue.set_sensitivity(study.study_uid, Sensitivity.SECRET, by="olga")
            secret.add(study.study_uid)
    client = served.client("alice")
    whole = [r["0020000D"]["Value"][0] for r in client.search_for_studies()]
    assert len(whole) == 15 - len(secret)
    assert not secret & set(whole)
    for limit in (1, 4):
        paged = []
        for offset in range(0, len(whole) + limit, limit):
            paged += [r["0020000D"]["Value"][0] for r in client.search_for_studies(limit=limit, offset=offset)]
        assert paged == whole
