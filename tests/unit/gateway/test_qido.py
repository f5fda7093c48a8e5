"""Federated QIDO-RS: denied studies are invisible in results, counts and pages."""

from __future__ import annotations

import pytest

from tests.world import World, study_uids


def test_each_person_sees_what_policy_allows(world: World) -> None:
    n1, n2, s1 = (world.studies[k].study_uid for k in ("N1", "N2", "S1"))
    assert sorted(study_uids(world.get("alice", "/dicomweb/studies"))) == sorted([n1, s1])
    assert sorted(study_uids(world.get("bob", "/dicomweb/studies"))) == sorted([n1, s1])
    assert study_uids(world.get("eve", "/dicomweb/studies")) == []
    assert n2 not in world.get("alice", "/dicomweb/studies").text


def test_the_query_event_counts_what_was_returned_and_filtered(world: World) -> None:
    world.get("alice", "/dicomweb/studies", headers={"X-Purpose": "treatment", "X-Device-Id": "ws-7"})
    (event,) = world.events("study.query")
    assert event.detail["returned"] == 2
    assert event.detail["filtered"] == 1
    assert event.detail["purpose"] == "treatment"
    assert event.objects.count == 2
    assert event.actor.principal_id == "alice"
    assert event.actor.zone == "north"
    assert event.actor.roles == ("north/radiologist",)
    assert event.actor.ip == "192.0.2.10"
    assert event.actor.device_id == "ws-7"


def test_pages_are_cut_after_filtering(world: World) -> None:
    allowed = study_uids(world.get("alice", "/dicomweb/studies"))
    pages = [study_uids(world.get("alice", f"/dicomweb/studies?limit=1&offset={i}")) for i in range(3)]
    assert pages == [[allowed[0]], [allowed[1]], []]
    assert study_uids(world.get("alice", "/dicomweb/studies?offset=2")) == []


@pytest.mark.parametrize(
    "query",
    [
        "includefield=all",
        "fuzzymatching=true",
        "PatientID=N-10*",
        "PatientID=*",
        "PatientName=Nord*",
        "PatientName=*&includefield=all&fuzzymatching=true",
        "AccessionNumber=N2",
        "StudyDate=20240301-20240302",
    ],
)
def test_search_forms_never_return_a_denied_study(world: World, query: str) -> None:
    n2 = world.studies["N2"]
    response = world.get("alice", f"/dicomweb/studies?{query}")
    assert response.status_code == 200
    assert n2.study_uid not in response.text
    assert "N-101" not in response.text


@pytest.mark.parametrize("path", ["/dicomweb/series", "/dicomweb/instances"])
def test_series_and_instances_without_the_study_are_filtered_by_study(world: World, path: str) -> None:
    n2 = world.studies["N2"]
    response = world.get("alice", path + "?includefield=all")
    assert response.status_code == 200
    found = response.json()
    assert found
    assert all(item["0020000D"]["Value"][0] != n2.study_uid for item in found)
    assert not any(uid in response.text for uid in (*n2.series_uids, *n2.sop_uids))
    visible = {item["0020000D"]["Value"][0] for item in found}
    assert visible == {world.studies["N1"].study_uid, world.studies["S1"].study_uid}


def test_series_of_a_denied_study_look_like_those_of_an_unknown_study(world: World) -> None:
    n1, n2 = world.studies["N1"], world.studies["N2"]
    assert len(study_uids(world.get("alice", f"/dicomweb/studies/{n1.study_uid}/series"), "0020000E")) == 2
    denied = world.get("alice", f"/dicomweb/studies/{n2.study_uid}/series")
    unknown = world.get("alice", "/dicomweb/studies/1.2.3.4.5.6/series")
    assert (denied.status_code, denied.content) == (unknown.status_code, unknown.content) == (200, b"[]")
    for level in ("instances", f"series/{n2.series_uids[0]}/instances"):
        assert world.get("alice", f"/dicomweb/studies/{n2.study_uid}/{level}").json() == []


def test_retrieve_urls_point_at_the_gateway(world: World) -> None:
    response = world.get("alice", "/dicomweb/studies")
    urls = [item["00081190"]["Value"][0] for item in response.json()]
    assert urls
    assert all(url.startswith("http://gw.test/dicomweb/studies/") for url in urls)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("StudyDate=20240302-20240301", "StudyDate"),
        ("StudyDate=2024-03-01", "StudyDate"),
        ("PatientID=A&PatientID=B", "PatientID"),
        ("PatinetID=N-101", "PatinetID"),
        ("StudyInstanceUID=1.02.3", "StudyInstanceUID"),
        ("limit=-1", "limit"),
    ],
)
def test_bad_queries_are_refused_and_audited(world: World, query: str, key: str) -> None:
    response = world.get("alice", f"/dicomweb/studies?{query}")
    assert response.status_code == 400
    assert key in response.json()["error"]
    (event,) = world.events("study.query")
    assert event.outcome.value == "failure"
    assert key in str(event.detail["reason"])


def test_an_unknown_study_found_in_an_archive_is_catalogued_to_its_zone(world: World) -> None:
    from pacsguard.archives.synthetic import make_study
    from tests.world import run

    fresh = make_study(patient_id="S-300", accession="S3")
    assert run(world.archives["south"].store(fresh.instances)).ok
    assert world.site.catalogue.get(fresh.study_uid) is None
    assert fresh.study_uid in study_uids(world.get("bob", "/dicomweb/studies?PatientID=S-300"))
    entry = world.site.catalogue.get(fresh.study_uid)
    assert entry is not None
    assert (entry.zone, entry.patient_id, entry.archive) == ("south", "S-300", "south-pacs")


def test_a_capped_search_says_so(world: World) -> None:
    from pacsguard.gateway import GatewayOptions

    response = world.get(
        "alice", "/dicomweb/studies", app=world.app_with(world.archives, GatewayOptions(max_results=1))
    )
    assert 1 <= len(study_uids(response)) <= 2  # one per archive, then filtered
    assert "narrow the search" in response.headers["warning"]
